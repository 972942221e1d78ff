"""Cambrian's own widgets: generation tree, virtual log, fitness charts, status bar,
side-by-side spec diff."""
