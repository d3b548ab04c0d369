"""Request and response shapes of the gateway: OpenAI-compatible, plus loraloop's own.

Inference requests may carry OpenAI's fields and vLLM's sampling, structured-output, tool
and logprob extensions (`FORWARDED`), which go to the engine as sent; anything else is
refused with 400 rather than passed on (vLLM takes more: a client-supplied chat template,
scheduling priority, KV-transfer parameters, which no chatbot backend should set). loraloop
adds `template`, `template_version` and `variables`, which it consumes and does not forward.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error object, as the official SDK parses it."""

    error: ErrorBody


_COMMON = {
    "model", "stream", "stream_options", "max_tokens", "temperature", "top_p", "n", "stop",
    "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "user",
    # vLLM's sampling extensions
    "top_k", "min_p", "repetition_penalty", "length_penalty", "min_tokens", "stop_token_ids",
    "include_stop_str_in_output", "ignore_eos", "skip_special_tokens",
    "spaces_between_special_tokens", "truncate_prompt_tokens", "prompt_logprobs",
    "allowed_token_ids", "bad_words", "use_beam_search", "echo",
    # structured output
    "response_format", "structured_outputs", "guided_json", "guided_regex", "guided_choice",
    "guided_grammar", "guided_decoding_backend", "guided_whitespace_pattern",
}  # fmt: skip
_CHAT = {
    "messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice",
    "parallel_tool_calls", "add_generation_prompt", "continue_final_message",
    "metadata", "store",  # OpenAI's; vLLM ignores them
}  # fmt: skip
OWN_FIELDS = frozenset({"template", "template_version", "variables"})  # consumed, not sent
FORWARDED: dict[str, frozenset[str]] = {
    "chat": frozenset(_COMMON | _CHAT),
    "completions": frozenset(_COMMON | {"prompt", "suffix", "best_of"}),
}


class TemplateFields(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    template: str | None = None
    template_version: int | None = Field(default=None, ge=1)
    variables: dict[str, Any] = Field(default_factory=dict)


class ChatCompletionRequest(TemplateFields):
    messages: list[dict[str, Any]] = Field(default_factory=list)


class CompletionRequest(TemplateFields):
    prompt: str | list[str] = ""


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "loraloop"
    kind: Literal["base", "alias", "version"]
    production_version: int | None = None
    canary_version: int | None = None
    canary_share: float | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    has_more: bool = Field(False, description="More models after the last one (`after` it).")


class TemplateCard(BaseModel):
    name: str
    version: int
    latest: bool
    description: str
    variables: dict[str, Any]
    default_alias: str | None
    tools: list[str] = Field(default_factory=list, description="The tools it declares, by name.")


class TemplateList(BaseModel):
    data: list[TemplateCard]


class HealthResponse(BaseModel):
    """Only `status` for callers that are neither on this machine nor hold a reviewer key."""

    status: Literal["ok", "degraded"]
    engine: dict[str, Any] | None = None
    replicas: list[dict[str, Any]] = Field(default_factory=list)
    database: str | None = None
    capture: dict[str, Any] = Field(default_factory=dict)
    rate_limit: dict[str, Any] = Field(default_factory=dict)


class RegisterAdapterRequest(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    path: str
    base_model: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)


class PromoteRequest(BaseModel):
    version: int = Field(ge=1)


class CanaryRequest(BaseModel):
    version: int | None = Field(default=None, ge=1)
    share: float = Field(ge=0.0, le=1.0)


class ShadowRequest(BaseModel):
    """`version` answers `share` of production's requests in the shadow; None ends it."""

    version: int | None = Field(default=None, ge=1)
    share: float = Field(default=1.0, ge=0.0, le=1.0)


class AdapterVersionOut(BaseModel):
    name: str
    version: int
    engine_name: str
    path: str
    base_model: str
    rank: int
    created_at: Any
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    status: str


class AliasOut(BaseModel):
    name: str
    production_version: int | None
    previous_version: int | None
    canary_version: int | None
    canary_share: float
    shadow_version: int | None = None
    shadow_share: float = 0.0
    revision: int


class KeyCreateRequest(BaseModel):
    role: Literal["client", "reviewer", "admin"]
    name: str | None = Field(default=None, max_length=128)


class KeyOut(BaseModel):
    id: str
    role: str
    name: str | None
    created_at: Any
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="The key in plain text: shown this once, stored as a hash.")
