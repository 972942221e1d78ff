"""The distiller (DESIGN §10). See README.md in this folder."""
