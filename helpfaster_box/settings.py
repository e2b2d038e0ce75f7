"""One Settings struct: defaults < config file < HELPFASTER_* environment < CLI flags.

Every setting is data with a name, a type, a default and one line of help, so the
config file, ``serve --help`` and the README table are all generated from here.
"""

from __future__ import annotations

import json
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "helpfaster-box")


def _h(text: str) -> Meta:
    return Meta(description=text)


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # --- server -----------------------------------------------------------
    host: Annotated[str, _h("Address to listen on.")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535, description="TCP port to listen on.")] = 8080
    data_dir: Annotated[
        str, _h("Where the database, indexes and uploads live (default ~/.local/share/helpfaster-box).")
    ] = ""
    log_level: Annotated[str, _h("debug, info, warning or error.")] = "info"
    # --- operations ---------------------------------------------------------
    log_format: Annotated[
        Literal["json", "text"], _h("serve's log lines: one JSON object per line, or plain text.")
    ] = "json"
    log_message_text: Annotated[
        bool, _h("Debugging only: put visitors' chat messages in the log (never on by default).")
    ] = False
    metrics_enabled: Annotated[bool, _h("Serve Prometheus metrics at GET /metrics.")] = True
    metrics_token: Annotated[str, _h("If set, GET /metrics needs 'Authorization: Bearer <this token>'.")] = ""
    trusted_proxies: Annotated[
        list[str],
        _h(
            "Reverse proxies (IPs or CIDRs) whose X-Forwarded-For/-Proto are believed; empty = none, use the peer address."
        ),
    ] = msgspec.field(default_factory=list)
    # --- request limits ---------------------------------------------------
    max_request_bytes: Annotated[
        int, Meta(ge=1024, description="Largest JSON request body accepted (413 above).")
    ] = 1_048_576
    max_upload_bytes: Annotated[
        int, Meta(ge=1024, description="Largest uploaded document accepted (413 above).")
    ] = 26_214_400
    max_json_depth: Annotated[
        int, Meta(ge=4, le=500, description="Deepest nesting of a JSON request body (400 above).")
    ] = 32
    max_message_chars: Annotated[
        int, Meta(ge=1, description="Longest chat message accepted (400 above).")
    ] = 4000
    # --- rate limits (requests per minute per organization) -----------------
    rate_limit_free: Annotated[int, Meta(ge=1, description="Requests/minute, free plan.")] = 20
    rate_limit_starter: Annotated[int, Meta(ge=1, description="Requests/minute, starter plan.")] = 60
    rate_limit_growth: Annotated[int, Meta(ge=1, description="Requests/minute, growth plan.")] = 120
    rate_limit_scale: Annotated[int, Meta(ge=1, description="Requests/minute, scale plan.")] = 300
    rate_limit_auth_failures: Annotated[
        int,
        Meta(
            ge=1, description="Lookups of unknown or revoked keys per minute per client address (429 above)."
        ),
    ] = 20
    # --- models -------------------------------------------------------------
    models_dir: Annotated[str, _h("Directory holding the GGUF models and manifest.toml.")] = str(
        PROJECT_ROOT / "models"
    )
    chat_model: Annotated[str, _h("Chat GGUF path; empty = the active chat model of models_dir.")] = ""
    embedding_model: Annotated[
        str, _h("Embedding GGUF path; empty = the active embedding model of models_dir.")
    ] = ""
    load_models: Annotated[
        bool, _h("Load the models at start (off only for tools that never embed or chat).")
    ] = True
    # --- inference ----------------------------------------------------------
    llm_context_size: Annotated[
        int, Meta(ge=512, description="Chat model context (tokens), shared by all sequences.")
    ] = 8192
    llm_threads: Annotated[int, Meta(ge=0, description="CPU threads for inference; 0 = all cores.")] = 0
    llm_decode_threads: Annotated[
        int,
        Meta(
            ge=0,
            description="Threads for one-token steps (one conversation generating); 0 = llm_threads. 1 is fastest for small models.",
        ),
    ] = 1
    llm_max_sequences: Annotated[
        int, Meta(ge=1, le=64, description="Generations decoded together in one batch.")
    ] = 4
    llm_queue_size: Annotated[int, Meta(ge=1, description="Waiting chat requests before 503 overloaded.")] = (
        32
    )
    llm_max_tokens: Annotated[
        int,
        Meta(
            ge=1,
            description="Most tokens one reply generates, whatever a chatbot's maxTokens (a 135M model not done by 160 is looping).",
        ),
    ] = 160
    llm_timeout_s: Annotated[float, Meta(gt=0, description="Per-request generation time limit, seconds.")] = (
        60.0
    )
    # --- external inference engine (OpenAI-compatible server) ----------------
    llm_backend: Annotated[
        Literal["local", "openai"],
        _h(
            "local: llama.cpp in this process; openai: an OpenAI-compatible server at llm_base_url (llm_max_sequences, llm_queue_size, llm_timeout_s apply to it too)."
        ),
    ] = "local"
    llm_base_url: Annotated[
        str, _h("URL of the OpenAI-compatible server, e.g. http://10.0.0.5:8000 (with or without /v1).")
    ] = ""
    llm_model: Annotated[str, _h("Model name sent to the server; empty = the server's default.")] = ""
    llm_api_key: Annotated[str, _h("Bearer token for the server; empty = none.")] = ""
    llm_api: Annotated[
        Literal["chat", "completions"],
        _h(
            "chat: /v1/chat/completions, the server applies its model's template; completions: /v1/completions with the prompt rendered here."
        ),
    ] = "chat"
    llm_retries: Annotated[
        int, Meta(ge=0, le=10, description="Retries of a connection error before the first token.")
    ] = 2
    embedding_backend: Annotated[
        Literal["local", "openai"],
        _h("local: llama.cpp in this process; openai: /v1/embeddings at embedding_base_url."),
    ] = "local"
    embedding_base_url: Annotated[str, _h("URL of the embeddings server; empty = llm_base_url.")] = ""
    embedding_remote_model: Annotated[
        str, _h("Embedding model name sent to the server; empty = the server's default.")
    ] = ""
    embedding_api_key: Annotated[str, _h("Bearer token for the embeddings server; empty = llm_api_key.")] = ""
    # --- knowledge ----------------------------------------------------------
    chunk_tokens: Annotated[
        int, Meta(ge=32, le=256, description="Target chunk size in embedding tokens.")
    ] = 200
    chunk_overlap_tokens: Annotated[
        int, Meta(ge=0, le=128, description="Overlap between consecutive chunks.")
    ] = 30
    dense_weight: Annotated[
        float, Meta(ge=0, description="Weight of the vector ranking in hybrid fusion.")
    ] = 1.0
    lexical_weight: Annotated[
        float, Meta(ge=0, description="Weight of the BM25 ranking in hybrid fusion.")
    ] = 0.5
    ingest_parse_timeout_s: Annotated[
        float, Meta(gt=0, description="Time (wall and CPU) one document may take to parse; failed above.")
    ] = 120.0
    ingest_parse_memory_mb: Annotated[
        int, Meta(ge=256, description="Memory (address space) the child parsing one document may use.")
    ] = 1024
    ingest_max_pdf_pages: Annotated[
        int, Meta(ge=1, description="Most pages a PDF may have; a longer one ends failed, unparsed.")
    ] = 2_000
    max_sources_per_chatbot: Annotated[
        int, Meta(ge=1, description="Most sources one chatbot may hold (409 conflict above).")
    ] = 10_000
    ingest_max_attempts: Annotated[
        int, Meta(ge=1, description="Times a source is tried (restarts included) before it ends failed.")
    ] = 3
    url_allowed_hosts: Annotated[
        list[str], _h("Hosts that URL sources may be fetched from (exact or *.suffix); empty = none.")
    ] = msgspec.field(default_factory=list)
    url_fetch_max_bytes: Annotated[
        int, Meta(ge=1024, description="Largest page fetched for a URL source.")
    ] = 10_485_760
    url_fetch_timeout_s: Annotated[float, Meta(gt=0, description="Time limit for fetching a URL source.")] = (
        20.0
    )
    # --- chat ---------------------------------------------------------------
    default_answer_mode: Annotated[
        Literal["extractive", "grounded", "generative"],
        _h(
            "answerMode of chatbots created without one (see tests/quality: extractive wins with the 135M default model)."
        ),
    ] = "extractive"
    relevance_threshold: Annotated[
        float, Meta(ge=-1, le=1, description="Least cosine similarity of the best passage to answer at all.")
    ] = 0.35
    grounding_min_share: Annotated[
        float,
        Meta(ge=0, le=1, description="Grounded mode: least share of a reply's words found in its passages."),
    ] = 0.8
    # --- dashboard and widget -----------------------------------------------
    session_idle_minutes: Annotated[
        int, Meta(ge=1, description="A dashboard session ends after this long without a request.")
    ] = 480
    session_max_hours: Annotated[
        int, Meta(ge=1, description="A dashboard session ends this long after sign-in, used or not.")
    ] = 24
    widget_rate_limit: Annotated[
        int,
        Meta(
            ge=1,
            description="Requests/minute per publishable key and visitor address (on top of the plan's).",
        ),
    ] = 30
    # --- webhooks -----------------------------------------------------------
    webhook_allow_private: Annotated[
        bool,
        _h(
            "Allow webhook URLs on private, loopback and link-local addresses (metadata never); off, any org admin could probe the intranet."
        ),
    ] = False
    secret_key_file: Annotated[
        str,
        _h("Key sealing webhook secrets in the database (created 0600); empty = data_dir/secret.key."),
    ] = ""
    webhook_timeout_s: Annotated[
        float, Meta(gt=0, description="Time limit of one webhook delivery attempt.")
    ] = 10.0
    webhook_backoff_scale: Annotated[
        float, Meta(gt=0, description="Multiplier on the retry schedule (tests shrink it).")
    ] = 1.0

    # --- analytics ----------------------------------------------------------
    analytics_max_days: Annotated[
        int, Meta(ge=1, description="Longest analytics period accepted, in days (400 above).")
    ] = 366
    topics_refresh_minutes: Annotated[
        int,
        Meta(
            ge=0,
            description="Recompute topics of chatbots with new questions this often; 0 = only on request.",
        ),
    ] = 60
    topics_window_days: Annotated[
        int, Meta(ge=1, description="Topics cluster the visitor questions of this many last days.")
    ] = 90

    def __post_init__(self) -> None:
        if not self.data_dir:
            self.data_dir = default_data_dir()
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError(f"log_level must be debug, info, warning or error, not {self.log_level!r}")
        if self.llm_backend == "openai" and not self.llm_base_url:
            raise SettingsError("llm_backend = 'openai' needs llm_base_url")
        if self.embedding_backend == "openai" and not (self.embedding_base_url or self.llm_base_url):
            raise SettingsError("embedding_backend = 'openai' needs embedding_base_url (or llm_base_url)")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def db_path(self) -> Path:
        return self.data_path / "helpfaster.duckdb"

    @property
    def secret_key_path(self) -> Path:
        return (
            Path(self.secret_key_file).expanduser() if self.secret_key_file else self.data_path / "secret.key"
        )

    def rate_limit_for(self, plan: str) -> int:
        return int(getattr(self, f"rate_limit_{plan}"))


class SettingsError(ValueError):
    """A setting is unknown or has a bad value; the message names it."""


FIELDS: dict[str, msgspec.inspect.Field] = {
    f.name: f
    for f in msgspec.inspect.type_info(Settings).fields  # type: ignore[attr-defined]
}
PLANS = ("free", "starter", "growth", "scale")


def describe(name: str) -> str:
    """The one-line help of a setting, from its Meta(description=...)."""
    hint = typing.get_type_hints(Settings, include_extras=True)[name]
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, Meta) and meta.description:
            return meta.description
    return ""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def render_config_file() -> str:
    """config/helpfaster.toml: every setting commented out, with its help and default."""
    lines = [
        "# HelpFaster Box settings. Every key is shown with its default, commented out.",
        "# Precedence: defaults < this file < HELPFASTER_<KEY> environment variables < CLI flags.",
        "# Use it with `helpfaster-box serve --config config/helpfaster.toml`.",
    ]
    defaults = Settings(data_dir="~/.local/share/helpfaster-box", models_dir="<checkout>/models")
    for name in FIELDS:
        value = _toml_value(getattr(defaults, name))
        lines += ["", f"# {describe(name)}", f"# {name} = {value}"]
    return "\n".join(lines) + "\n"


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in FIELDS.items():
        raw = environ.get(f"HELPFASTER_{name.upper()}")
        if raw is None:
            continue
        ftype = field.type
        if isinstance(ftype, msgspec.inspect.Metadata):  # Annotated[list[str], Meta(...)]
            ftype = ftype.type
        if isinstance(ftype, msgspec.inspect.ListType):
            out[name] = [h.strip() for h in raw.split(",") if h.strip()]
        else:
            out[name] = raw
    return out


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from the layers, each overriding the one before."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    config_file = config_file or environ.get("HELPFASTER_CONFIG")
    if config_file:
        path = Path(config_file).expanduser()
        try:
            with path.open("rb") as fh:
                from_file = tomllib.load(fh)
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
        unknown = sorted(set(from_file) - set(FIELDS))
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r} in {path}")
        merged.update(from_file)
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from None


def render_settings_table() -> str:
    """The README's settings table, from the same data."""
    defaults = Settings(data_dir="~/.local/share/helpfaster-box", models_dir="<checkout>/models")
    rows = ["| setting | environment | default | what |", "|---|---|---|---|"]
    for name in FIELDS:
        value = _toml_value(getattr(defaults, name))
        rows.append(f"| `{name}` | `HELPFASTER_{name.upper()}` | `{value}` | {describe(name)} |")
    return "\n".join(rows)
