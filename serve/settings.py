"""Settings of the online path: the model it serves, the vLLM engine, the gateway."""

from itertools import pairwise
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "SmolLM2-135M-Instruct"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore")


class ModelSettings(BaseSettings):
    """Which base model is served and where pulled models are cached."""

    model_config = _config("LORALOOP_MODEL_")

    name: str = Field(DEFAULT_MODEL, description="Base model served; a name in the model cache.")
    path: Path | None = Field(
        None, description="A local Hugging Face model directory to serve instead of the cache."
    )
    cache_dir: Path = Field(Path("data/models"), description="Where `models pull` writes models.")

    def model_dir(self) -> Path:
        """The directory the engine loads: an explicit path wins over the cache."""
        return self.path if self.path is not None else self.cache_dir / self.name


class EngineSettings(BaseSettings):
    """Options of the supervised vLLM OpenAI server (or the external ones to use instead)."""

    model_config = _config("LORALOOP_ENGINE_")

    urls: list[str] = Field(
        default_factory=list,
        description="External engine base URLs; when set, no engine is started.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8100, ge=1, le=65535)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="auto: float32 on CPU (bf16 measured 4x slower there), else vLLM's auto.",
    )
    kv_cache_space_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on CPU.")
    gpu_memory_utilization: float = Field(0.4, gt=0, le=1)
    max_model_len: int = Field(2048, ge=64)
    max_loras: int | None = Field(
        None,
        ge=1,
        description="Adapters in one batch (vLLM --max-loras); unset: a tenth of the engine's "
        "device memory in rank-`max_lora_rank` slots, at most 16 (4 on CPU).",
    )
    max_lora_rank: int = Field(16, ge=1)
    max_cpu_loras: int | None = Field(
        None,
        ge=1,
        description="Adapters kept warm in host memory (--max-cpu-loras); unset: a twentieth "
        "of host memory in slots, at most 512.",
    )
    tool_call_parser: str = Field(
        "hermes",
        description="vLLM's tool parser (--tool-call-parser), with --enable-auto-tool-choice: "
        "`hermes` for ChatML/Qwen/Hermes models and the shipped template, `llama3_json` for "
        "Llama 3.1+, `mistral` for Mistral; empty: no tool calling (`tools` answered 400).",
    )
    tool_strict_level: Literal["auto", "function", "parameter"] = Field(
        "parameter",
        description="What vLLM's grammar enforces in a tool call (--tool-strict-level): "
        "parameter: the call's form and its arguments against the tool's JSON schema; "
        "function: the form only; auto: OpenAI's rule, arguments only for `strict` tools.",
    )
    chat_template: str = Field(
        "auto",
        description="auto: the shipped ChatML-with-tools template for a ChatML model whose own "
        "template has no tools (the bundled one), else the model's own; model: always the "
        "model's own; or a shipped name (chatml_tools) or a path. Training renders with the same.",
    )
    extra_args: list[str] = Field(default_factory=list, description="More api_server flags.")
    entrypoint: str = Field(
        "vllm.entrypoints.openai.api_server", description="Python module run as the engine."
    )
    startup_timeout_s: float = Field(600, gt=0)
    restart: bool = Field(True, description="Restart the engine when it dies.")
    max_restarts: int = Field(5, ge=0, description="Restarts allowed before giving up.")
    log_dir: Path = Path("data/logs")
    api_key: SecretStr | None = Field(
        None,
        description="Bearer key every engine demands (vLLM --api-key); the gateway, the worker "
        "and the evaluator send it. Unset: an embedded engine gets a random one per start, "
        "written to `api_key_file` for this machine's other loraloop commands.",
    )
    api_key_file: Path = Field(
        Path("data/engine.key"), description="Where a generated engine key is kept (0600)."
    )

    def key(self) -> str | None:
        """The key engines demand: configured, else the one the embedded engine was
        started with (its key file), else none."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if not self.urls and self.api_key_file.is_file():
            return self.api_key_file.read_text().strip() or None
        return None

    def headers(self) -> dict[str, str]:
        """What every request to an engine carries."""
        key = self.key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    @field_validator("urls")
    @classmethod
    def _strip_slash(cls, urls: list[str]) -> list[str]:
        return [u.rstrip("/") for u in urls]


class StoreSettings(BaseSettings):
    """Where adapter versions' files live and how engine hosts keep their copies."""

    model_config = _config("LORALOOP_STORE_")

    url: str | None = Field(
        None,
        description="s3://bucket/prefix: publish adapters to S3-compatible object storage, "
        "from which each engine host fetches them; unset: the adapter store directory "
        "(LORALOOP_SERVE_ADAPTER_STORE), which every engine must see at the same path.",
    )
    endpoint_url: str | None = Field(
        None, description="The S3 API's URL (MinIO, R2, moto); unset: AWS S3. Credentials: "
        "boto3's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an IAM role).",
    )  # fmt: skip
    region: str | None = None
    cache_dir: Path = Field(
        Path("data/adapter-cache"), description="Each host's copies of published adapters."
    )
    cache_max_gib: float = Field(
        20, gt=0, description="Least recently used copies are removed above this size."
    )
    timeout_s: float = Field(5.0, gt=0, description="Connect timeout to the object store.")

    @field_validator("url")
    @classmethod
    def _s3_only(cls, value: str | None) -> str | None:
        if value and not value.startswith("s3://"):
            raise ValueError("must be an s3://bucket/prefix URL (or unset for a directory)")
        return value or None

    @field_validator("endpoint_url", "region")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None


class ServeSettings(BaseSettings):
    """The gateway process itself."""

    model_config = _config("LORALOOP_SERVE_")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    start_engine: bool = Field(True, description="Start the engine with the gateway.")
    require_keys: bool = Field(
        True,
        description="false: open mode, no key needed from this machine (a loopback peer that "
        "sends no forwarding header); allowed only when the gateway binds a loopback address.",
    )
    allowed_hosts: list[str] = Field(
        ["localhost", "127.0.0.1", "::1"],
        description="Host header values served (`*.example.com` and `*` allowed): a DNS "
        "rebinding page cannot reach a local gateway under its own name.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks whose X-Forwarded-For/-Proto are believed (the load "
        "balancer): the client's address and https behind TLS termination.",
    )
    session_ttl_s: float = Field(
        8 * 3600, gt=0, description="A page sign-in lasts this long (revoked with its key)."
    )
    auth_failures_per_min: float = Field(
        60, gt=0, description="Failed authentications per client address per minute."
    )
    auth_failures_burst: int = Field(
        200, ge=1, description="Failed authentications a client address may make at once."
    )
    max_concurrent_per_key: int = Field(
        64, ge=1, description="In-flight inference requests per key (per address in open mode)."
    )
    first_byte_timeout_s: float = Field(
        300,
        gt=0,
        description="An engine that sends no response header in this long is treated as "
        "unreachable: the request goes once to another replica.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger bodies get 413.")
    max_json_depth: int = Field(32, ge=4, description="Deeper-nested JSON bodies get 400.")
    max_n: int = Field(16, ge=1, description="Most choices (n, best_of) one request may ask.")
    max_messages: int = Field(512, ge=1, description="Most messages in one chat request.")
    rate_limit_per_s: float = Field(
        50, ge=0, description="Requests per second per API key on each gateway; 0: no limit."
    )
    rate_limit_burst: int = Field(100, ge=1, description="Requests a key may send at once.")
    adapter_store: Path = Field(Path("data/adapters"), description="Adapters must live here.")
    templates_dir: Path = Path("prompt_templates")
    reconcile_interval_s: float = Field(5.0, gt=0, description="Re-read aliases this often.")
    drain_timeout_s: float = Field(300.0, gt=0, description="Wait for in-flight before unload.")
    routing: Literal["affinity", "least_busy"] = Field(
        "affinity",
        description="affinity: an alias's requests go to the replicas ranked for it by "
        "rendezvous hashing, the first within `affinity_load_factor` of the average load "
        "(consistent hashing with bounded loads); least_busy: the least busy replica that "
        "holds the adapter (vLLM production-stack's rule).",
    )
    affinity_load_factor: float = Field(
        1.25,
        ge=1.0,
        description="A replica takes an alias's request while its outstanding "
        "requests stay within this times the replicas' average; else the next-ranked one.",
    )
    affinity_min_load: int = Field(
        8,
        ge=1,
        description="Below this many outstanding requests a replica always takes "
        "its aliases' requests: an engine batches a few at no cost.",
    )
    adapter_replicas: int = Field(
        2,
        ge=0,
        description="Replicas that load an alias's versions ahead of its requests "
        "(promote, canary, shadow, reconcile); others load one on demand. 0: every replica.",
    )
    replica_check_interval_s: float = Field(
        2.0, gt=0, description="Probe every engine replica's /health this often."
    )
    replica_check_timeout_s: float = Field(
        2.0, gt=0, description="A replica that does not answer its probe in time leaves rotation."
    )
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="On SIGTERM, wait this long for in-flight requests to finish."
    )
    keep_alive_s: int = Field(
        75,
        ge=1,
        description="How long an idle client connection is kept open. Longer than the idle "
        "timeout of the balancers and clients in front (60 s on most), so the gateway never "
        "closes a connection a client is about to reuse.",
    )


class RolloutSettings(BaseSettings):
    """The default rollout policy (an admin may give another per rollout) and how often
    running rollouts are judged."""

    model_config = _config("LORALOOP_ROLLOUT_")

    steps: list[float] = Field(
        [5, 25, 50], description="Canary shares in percent, one step each; all passed: promote."
    )
    min_requests: int = Field(200, ge=1, description="Canary requests a step needs.")
    min_ratings: int = Field(
        20, ge=0, description="End-user ratings a step waits for (thumbs-down rate); 0: none."
    )
    min_reviews: int = Field(10, ge=2, description="Reviews per side before scores count.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level, split over metrics.")
    latency_tolerance: float = Field(0.25, ge=0, description="Canary p95 may exceed by this.")
    latency_slack_ms: float = Field(
        100, ge=0, description="...and by this many ms: a p95 within it is never worse."
    )
    max_step_s: float = Field(
        86_400, gt=0, description="A step still waiting for ratings after this is judged without."
    )
    check_interval_s: float = Field(30, gt=0, description="Judge running rollouts this often.")
    alert_webhook_url: str | None = Field(None, description="POSTed each promote or rollback.")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[float]) -> list[float]:
        if not steps or any(not 0 < s <= 100 for s in steps):
            raise ValueError("steps are canary shares in percent, each in (0, 100]")
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError("steps must increase")
        return steps


class TracingSettings(BaseSettings):
    """OpenTelemetry traces, configured by OTel's own variables: on only when an OTLP
    endpoint is set, as every OTel SDK behaves, so a team's existing OTEL_* environment
    (Langfuse, Phoenix, a collector) works unchanged."""

    model_config = _config("OTEL_")

    exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP base URL (http/protobuf: traces go to <url>/v1/traces)."
    )
    exporter_otlp_traces_endpoint: str | None = Field(
        None, description="The traces endpoint itself; wins over the base URL."
    )
    exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    exporter_otlp_headers: SecretStr | None = Field(
        None, description="key=value,key=value sent with every export (a back-end's API key)."
    )
    service_name: str | None = Field(
        None, description="Default: loraloop-gateway, loraloop-worker, loraloop-engine."
    )
    traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = Field(
        "parentbased_always_on",
        description="parentbased_*: a client's sampled traceparent is honoured; "
        "traceidratio: only the ratio decides.",
    )
    traces_sampler_arg: float = Field(1.0, ge=0, le=1, description="The ratio for *traceidratio.")
    instrumentation_genai_capture_message_content: bool = Field(
        False, description="Prompt and answer text in spans (off: they may hold personal data)."
    )

    @property
    def traces_endpoint(self) -> str | None:
        """Where spans go, or None: tracing is off."""
        if self.exporter_otlp_traces_endpoint:
            return self.exporter_otlp_traces_endpoint
        if not self.exporter_otlp_endpoint:
            return None
        base = self.exporter_otlp_endpoint.rstrip("/")
        return base if self.exporter_otlp_protocol == "grpc" else f"{base}/v1/traces"

    def headers(self) -> dict[str, str]:
        raw = self.exporter_otlp_headers.get_secret_value() if self.exporter_otlp_headers else ""
        pairs = (item.partition("=") for item in raw.split(",") if "=" in item)
        return {unquote(k.strip()): unquote(v.strip()) for k, _, v in pairs}
