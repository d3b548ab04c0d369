"""A stand-in for vLLM's api_server, for fast unit tests of the engine manager and gateway.

It takes the same flags, forks a child the way vLLM forks its engine core, and speaks
the parts of vLLM's HTTP API the gateway uses: /health, /v1/models, chat and text
completions (streamed or not), and runtime LoRA load/unload. Answers name the model
that produced them (`[name] ...`) so tests can see where a request went.
FAKE_ENGINE_MODE picks a failure: `crash` exits at start after logging why, `hang`
never becomes healthy, `refuse-lora` answers but refuses to load any adapter.
FAKE_ENGINE_DELAY_S slows every completion down, FAKE_ENGINE_CHUNK_DELAY_S every streamed
chunk. GET /fake/stats counts streams that completed and streams the client aborted
(the connection closed under a write), as vLLM aborts a request whose client went away,
and shows the last completion's W3C `traceparent` header.
With VLLM_API_KEY set, every /v1 path wants `Authorization: Bearer <it>` (401 otherwise),
as vLLM's own middleware does.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTEXT = 2048


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", default="fake")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
    delay = float(os.environ.get("FAKE_ENGINE_DELAY_S", "0"))
    chunk_delay = float(os.environ.get("FAKE_ENGINE_CHUNK_DELAY_S", "0"))
    stats: dict[str, Any] = {"completed": 0, "aborted": 0, "traceparent": None}
    print(f"fake engine: model={args.model} mode={mode}", flush=True)
    if mode == "crash":
        print("RuntimeError: fake engine could not load the model", flush=True)
        sys.exit(3)
    core = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    print(f"fake engine core pid={core.pid}", flush=True)
    if mode == "hang":
        time.sleep(3600)
    base = args.served_model_name
    adapters: dict[str, str] = {}
    api_key = os.environ.get("VLLM_API_KEY")

    class Handler(BaseHTTPRequestHandler):
        def _refused(self) -> bool:
            if (
                api_key
                and self.path.startswith("/v1")
                and (self.headers.get("Authorization") != f"Bearer {api_key}")
            ):
                self._send(401, {"error": "Unauthorized"})
                return True
            return False

        def do_GET(self) -> None:
            if self._refused():
                return
            if self.path == "/health":
                self._send(200, {})
            elif self.path == "/fake/stats":
                self._send(200, stats)
            elif self.path == "/v1/models":
                ids = [base, *adapters]
                self._send(200, {"object": "list", "data": [{"id": i} for i in ids]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self._refused():
                return
            if self.path == "/v1/load_lora_adapter":
                if mode == "refuse-lora":
                    return self._error(500, "fake engine refuses to load adapters")
                if body["lora_name"] in adapters:
                    return self._error(
                        400, f"The lora adapter '{body['lora_name']}' has already been loaded."
                    )
                if not Path(body["lora_path"]).is_dir():
                    return self._error(404, f"adapter path {body['lora_path']} not found")
                adapters[body["lora_name"]] = body["lora_path"]
                return self._send(200, "Success")
            if self.path == "/v1/unload_lora_adapter":
                if adapters.pop(body["lora_name"], None) is None:
                    return self._error(
                        404, f"The lora adapter '{body['lora_name']}' cannot be found."
                    )
                return self._send(200, "Success")
            if self.path in ("/v1/chat/completions", "/v1/completions"):
                stats["traceparent"] = self.headers.get("traceparent")
                return self._complete(body, chat=self.path.endswith("chat/completions"))
            return self._error(404, "not found")

        def _complete(self, body: dict[str, Any], chat: bool) -> None:
            model = body.get("model")
            if model != base and model not in adapters:
                return self._error(404, f"The model `{model}` does not exist.")
            if int(body.get("max_tokens") or 16) > CONTEXT:
                return self._error(
                    400, f"max_tokens is too large: maximum context length is {CONTEXT}"
                )
            time.sleep(delay)
            prompt = body["messages"][-1]["content"] if chat else body["prompt"]
            words = f"[{model}] echo: {prompt}".split(" ")
            usage = {
                "prompt_tokens": len(str(prompt).split()),
                "completion_tokens": len(words),
                "total_tokens": len(str(prompt).split()) + len(words),
            }
            kind = "chat.completion" if chat else "text_completion"
            if not body.get("stream"):
                text = " ".join(words)
                choice = {
                    "index": 0,
                    "finish_reason": "stop",
                    **(
                        {"message": {"role": "assistant", "content": text, **_calls(body)}}
                        if chat
                        else {"text": text}
                    ),
                }
                return self._send(
                    200,
                    {
                        "id": "cmpl-1",
                        "object": kind,
                        "model": model,
                        "choices": [choice],
                        "usage": usage,
                    },
                )
            try:
                self._stream(body, chat, kind, model, words, usage)
                stats["completed"] += 1
            except (BrokenPipeError, ConnectionResetError):
                stats["aborted"] += 1

        def _stream(
            self,
            body: dict[str, Any],
            chat: bool,
            kind: str,
            model: str,
            words: list[str],
            usage: dict[str, int],
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i, word in enumerate(words):
                time.sleep(chunk_delay)
                piece = word if i == 0 else f" {word}"
                choice = {
                    "index": 0,
                    "finish_reason": "stop" if i == len(words) - 1 else None,
                    **({"delta": {"content": piece}} if chat else {"text": piece}),
                }
                chunk = {
                    "id": "cmpl-1",
                    "object": f"{kind}.chunk",
                    "model": model,
                    "choices": [choice],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            if (body.get("stream_options") or {}).get("include_usage"):
                chunk = {
                    "id": "cmpl-1",
                    "object": f"{kind}.chunk",
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def _error(self, status: int, message: str) -> None:
            self._send(
                status, {"error": {"message": message, "type": "BadRequestError", "code": status}}
            )

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler, bind_and_activate=False)
    server.request_queue_size = 256  # the default 5 drops connects under load: 1 s SYN retries
    server.server_bind()
    server.server_activate()
    server.serve_forever()


def _calls(body: dict[str, Any]) -> dict[str, Any]:
    """With tools, a call of the first one whose arguments name every tool the engine got
    (so tests see what the gateway forwarded)."""
    names = [t["function"]["name"] for t in body.get("tools") or []]
    if not names or body.get("tool_choice") == "none":
        return {}
    arguments = json.dumps({"seen": names})
    call = {
        "id": "call_fake",
        "type": "function",
        "function": {"name": names[0], "arguments": arguments},
    }
    # OpenAI's form for an answer that is only a call (what `required` asks for): no text
    text: dict[str, Any] = {"content": None} if body.get("tool_choice") == "required" else {}
    return {"tool_calls": [call], **text}


if __name__ == "__main__":
    main()
