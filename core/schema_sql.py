"""Schema migrations, applied in order; the version lives in meta.schema_version.

Never edit a shipped migration: add a new one.
"""

M1_CORE = """
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);

CREATE TABLE spec_versions (
    hash TEXT PRIMARY KEY REFERENCES blobs(hash),
    parent_hash TEXT REFERENCES spec_versions(hash),
    origin TEXT NOT NULL CHECK (origin IN ('human','mutation','amendment','import')),
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'campaign',
    spec_hash TEXT NOT NULL REFERENCES spec_versions(hash),
    settings_json TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE generations (
    number INTEGER PRIMARY KEY,
    parent INTEGER,
    campaign_id TEXT REFERENCES campaigns(id),
    spec_hash TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN
        ('in_progress','tested','promoted','failed','timeout','interrupted')),
    artifact_hash TEXT,
    status TEXT CHECK (status IS NULL OR status IN ('viable','non-viable')),
    failure_stage TEXT,
    report_json TEXT,
    fitness_json TEXT,
    reason TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX generations_campaign ON generations(campaign_id, number);
CREATE INDEX generations_spec ON generations(spec_hash, number);
CREATE INDEX generations_outcome ON generations(outcome);

-- Terminal rows are history: no update, no delete.
CREATE TRIGGER generations_terminal_frozen BEFORE UPDATE ON generations
WHEN OLD.outcome IN ('promoted','failed','timeout','interrupted')
BEGIN
    SELECT RAISE(ABORT, 'generation is terminal and cannot be changed');
END;

CREATE TRIGGER generations_legal_transition BEFORE UPDATE OF outcome ON generations
WHEN NEW.outcome <> OLD.outcome
 AND OLD.outcome NOT IN ('promoted','failed','timeout','interrupted') AND NOT (
    (OLD.outcome = 'in_progress' AND NEW.outcome IN ('tested','failed','timeout','interrupted')) OR
    (OLD.outcome = 'tested' AND NEW.outcome IN ('promoted','failed'))
)
BEGIN
    SELECT RAISE(ABORT, 'illegal outcome transition');
END;

CREATE TRIGGER generations_no_delete BEFORE DELETE ON generations
BEGIN
    SELECT RAISE(ABORT, 'generations are never deleted');
END;

CREATE TABLE artifact_files (
    artifact_hash TEXT NOT NULL,
    path TEXT NOT NULL,
    blob_hash TEXT NOT NULL REFERENCES blobs(hash),
    PRIMARY KEY (artifact_hash, path)
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    generation INTEGER,
    campaign_id TEXT,
    data_json TEXT
);
CREATE INDEX events_generation ON events(generation);
CREATE INDEX events_campaign ON events(campaign_id, id);

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

CREATE TABLE log_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    generation INTEGER NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    ts TEXT NOT NULL,
    capped INTEGER NOT NULL DEFAULT 0,
    UNIQUE (generation, stream, seq)
);
CREATE INDEX log_chunks_generation ON log_chunks(generation, id);

CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    command TEXT NOT NULL,
    args_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    consumed_at TEXT
);
CREATE INDEX commands_pending ON commands(target, consumed_at);

CREATE TABLE engine_leases (
    owner TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat REAL NOT NULL
);

CREATE TABLE llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    generation INTEGER,
    campaign_id TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    purpose TEXT NOT NULL,
    request_id TEXT,
    started_at TEXT NOT NULL,
    latency_ms INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL,
    usage_json TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    fallback_from TEXT,
    simulated INTEGER NOT NULL
);
CREATE INDEX llm_calls_campaign ON llm_calls(campaign_id);
CREATE INDEX llm_calls_generation ON llm_calls(generation);

CREATE TABLE rig_runs (
    run_id TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    backend TEXT NOT NULL,
    container_id TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    stage_ms TEXT,
    total_ms INTEGER,
    first_output_ms INTEGER,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    rig_error TEXT
);
CREATE INDEX rig_runs_generation ON rig_runs(generation);
"""

M2_EVOLUTION = """
CREATE TABLE amendments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT,
    spec_hash TEXT NOT NULL,
    section TEXT NOT NULL,
    text TEXT NOT NULL,
    feature TEXT NOT NULL DEFAULT '',
    evidence_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('pending','accepted','edited','rejected')),
    result_spec_hash TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE observations (
    run_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    params_json TEXT NOT NULL,
    spec_hash TEXT,
    parent_spec_hash TEXT,
    campaign_id TEXT,
    viability_rate REAL,
    interval_json TEXT,
    generations INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    rejected_reason TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
"""

M3_WALL_TIME = """
ALTER TABLE campaigns ADD COLUMN wall_used_s REAL NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN engine_pid INTEGER;
"""

M4_DRAW = """
ALTER TABLE generations ADD COLUMN draw INTEGER;
CREATE INDEX generations_draw ON generations(campaign_id, draw);
"""

# A generation that re-judges the artifact of an interrupted one (the rig became unusable,
# the engine died mid-run): no LLM call, nothing re-spent.
M5_REDO = """
ALTER TABLE generations ADD COLUMN redo_of INTEGER;
CREATE INDEX generations_redo ON generations(redo_of);
"""

# Generations brought in from an original Cambrian artifacts tree. `key` is the artifact
# hash (of the stored files; the recorded hash when the tree holds only the record), so an
# artifact is imported once however often the tree is; the tokens are the original's
# recorded usage, kept apart from llm_calls because no call was made here.
M6_IMPORTS = """
CREATE TABLE imported_generations (
    key TEXT PRIMARY KEY,
    generation INTEGER NOT NULL UNIQUE REFERENCES generations(number),
    campaign_id TEXT REFERENCES campaigns(id),
    source TEXT NOT NULL,
    original_campaign TEXT,
    original_generation INTEGER,
    has_artifact INTEGER NOT NULL,
    model TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    imported_at TEXT NOT NULL
);
CREATE INDEX imported_generations_campaign ON imported_generations(campaign_id);
CREATE INDEX imported_generations_original ON imported_generations(original_generation);
"""

# Where a call's price came from (core.llm.pricing: list, configured, local, unknown,
# simulated) and whether its token counts are estimates (a server that reported no usage).
# Rows written before this migration were priced from prices.json: 'list'.
M7_PRICE_SOURCE = """
ALTER TABLE llm_calls ADD COLUMN price_source TEXT NOT NULL DEFAULT 'list';
ALTER TABLE llm_calls ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
"""


# The change signal (DESIGN §3): one counter per topic, bumped by triggers in the same
# transaction as the change, so every writer (engine, evolution, CLI, TUI) bumps it without
# knowing. Readers poll PRAGMA data_version (free) and read these few rows only when it moved,
# to learn *what* changed: a screen reloads only for the topics it shows.
CHANGE_TOPICS: dict[str, str] = {
    "campaigns": "campaigns",
    "generations": "generations",
    "specs": "spec_versions",
    "amendments": "amendments",
    "observations": "observations",
    "logs": "log_chunks",
    "llm": "llm_calls",
    "leases": "engine_leases",
}


def _change_triggers() -> str:
    out = ["CREATE TABLE data_versions (topic TEXT PRIMARY KEY, version INTEGER NOT NULL DEFAULT 0);"]
    for topic, table in CHANGE_TOPICS.items():
        out.append(f"INSERT INTO data_versions(topic, version) VALUES ('{topic}', 0);")
        for op in ("INSERT", "UPDATE", "DELETE"):
            out.append(f"CREATE TRIGGER data_version_{table}_{op.lower()} AFTER {op} ON {table} BEGIN\n"
                       f"    UPDATE data_versions SET version = version + 1 WHERE topic = '{topic}';\n"
                       "END;")
    return "\n".join(out) + "\n"


M8_CHANGES = _change_triggers()

# Reproduction (DESIGN §7): a generation bred by a running offspring (not by the engine) names
# its breeder in `bred_by` and belongs to no campaign's count (campaign_id is NULL; the
# lineage links it to its parent); `reproductions` holds each test of an offspring's
# fertility, with the gateway's record of the calls it made.
M9_REPRODUCTION = """
ALTER TABLE generations ADD COLUMN bred_by INTEGER;
CREATE INDEX generations_bred_by ON generations(bred_by);
CREATE TABLE reproductions (
    generation INTEGER PRIMARY KEY REFERENCES generations(number),
    campaign_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('fertile', 'infertile', 'error')),
    stage TEXT,
    reason TEXT,
    offspring INTEGER REFERENCES generations(number),
    request_json TEXT NOT NULL DEFAULT '{}',
    gateway_json TEXT NOT NULL DEFAULT '{}',
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    rig_ms INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX reproductions_campaign ON reproductions(campaign_id);
CREATE TRIGGER data_version_reproductions_insert AFTER INSERT ON reproductions BEGIN
    UPDATE data_versions SET version = version + 1 WHERE topic = 'generations';
END;
"""

# Layer 2, the dual-blind examiner (core.examiner): one probe set per (spec version, examiner
# model), written once by an `examine` call that saw only the writer-visible spec and reused by
# every campaign of that spec. `state` is 'ready' (probes_json holds the valid probes) or
# 'unavailable' (the answer was malformed even after one repair; `reason` says why).
# `dropped_json` keeps the probes the parser refused, each with its reason; provenance: the
# ledger ids of the calls, their tokens and cost, the campaign that paid. A person's dismissal
# of one probe (it stops counting) is a row of `examiner_dismissals`, with the evidence
# (runs, failures) seen when it was dismissed; the reports keep every result.
M10_EXAMINER = """
CREATE TABLE examiner_probes (
    spec_hash TEXT NOT NULL REFERENCES spec_versions(hash),
    model TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('ready', 'unavailable')),
    probes_json TEXT NOT NULL DEFAULT '[]',
    dropped_json TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    call_ids_json TEXT NOT NULL DEFAULT '[]',
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    campaign_id TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (spec_hash, model)
);
CREATE TABLE examiner_dismissals (
    spec_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    probe TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence_json TEXT NOT NULL DEFAULT '{}',
    dismissed_at TEXT NOT NULL,
    PRIMARY KEY (spec_hash, model, probe),
    FOREIGN KEY (spec_hash, model) REFERENCES examiner_probes(spec_hash, model)
);
CREATE TRIGGER data_version_examiner_probes_insert AFTER INSERT ON examiner_probes BEGIN
    UPDATE data_versions SET version = version + 1 WHERE topic = 'specs';
END;
CREATE TRIGGER data_version_examiner_dismissals_insert AFTER INSERT ON examiner_dismissals BEGIN
    UPDATE data_versions SET version = version + 1 WHERE topic = 'generations';
END;
"""

MIGRATIONS: list[str] = [M1_CORE, M2_EVOLUTION, M3_WALL_TIME, M4_DRAW, M5_REDO, M6_IMPORTS,
                         M7_PRICE_SOURCE, M8_CHANGES, M9_REPRODUCTION, M10_EXAMINER]
