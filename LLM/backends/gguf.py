"""A GGUF model served in-process by llama-cpp-python.

One Llama instance per backend, used by one generation at a time (its lock): llama.cpp keeps a
single KV cache per context, so two turns interleaving would corrupt each other. Loading,
generation and freeing all run in worker threads; the event loop never blocks on the model.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncGenerator, Callable, Iterator

import psutil

from Config.schema import LlmBackendConfig, LlmConfig
from Core.errors import BackendError, LuxaError
from Core.gpu import GpuStatus
from Core.models import resolve
from Core.priority import VOICE, is_voice
from LLM.backends import prompt_cache
from LLM.backends.base import GenerationRequest, GenerationStats
from LLM.backends.prompt_fit import EvalRate, Messages, fit
from LLM.backends.threaded import iterate_in_thread
from LLM.errors import SwapRefused

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A Llama instance plus what keeps it alive while a turn still uses it after a swap."""

    llama: Any
    path: Path
    formatter: Any  # the chat template that turns messages into the prompt text
    lock: threading.Lock = field(default_factory=threading.Lock)
    rate: EvalRate = field(default_factory=EvalRate)
    can_shift: bool = False
    freed: bool = False
    _users: int = 0
    _retiring: bool = False
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def checkout(self) -> bool:
        """Count a user; False once free() has begun (the caller takes the model that replaced it)."""
        with self._idle:
            if self._retiring:
                return False
            self._users += 1
            return True

    def checkin(self) -> None:
        with self._idle:
            self._users -= 1
            self._idle.notify_all()

    def free(self) -> None:
        """Blocking: waits for the turns still using this model, then releases its memory."""
        with self._idle:
            self._idle.wait_for(lambda: self._users == 0)
            self._retiring = True
        with self.lock:
            self.llama.close()
            self.freed = True


def check_memory_for(path: Path, margin: float) -> None:
    """Refuse a second model that would push the machine into swap while the first still serves."""
    needed = path.stat().st_size * margin
    available = psutil.virtual_memory().available
    if available < needed:
        raise SwapRefused(
            f"not enough memory to load {path.name} beside the current model: needs about "
            f"{needed / 2**20:.0f} MiB (file size x llm.swap_memory_margin={margin:g}), "
            f"{available / 2**20:.0f} MiB available"
        )


class GgufBackend:
    kind = "gguf"

    def __init__(self, name: str, backend: LlmBackendConfig, llm: LlmConfig, models_dir: str, gpu: GpuStatus):
        self.name = name
        self.model = backend.model
        self._backend_cfg = backend
        self._llm = llm
        self._models_dir = models_dir
        self._gpu = gpu
        self._model: LoadedModel | None = None
        self._error: str | None = None
        self._load_lock = asyncio.Lock()

    @property
    def loaded(self) -> LoadedModel | None:
        return self._model

    async def start(self) -> None:
        # Shielded: a probe that loads the model inside the chain's first-token timeout may be
        # cancelled; the load goes on and installs the model for the next probe instead of
        # being thrown away (a model slower to load than the timeout would never come back).
        await asyncio.shield(self._start())

    async def _start(self) -> None:
        async with self._load_lock:
            if self._model is None:
                self._model = await self._load(self.model)

    async def _load(self, model_name: str) -> LoadedModel:
        try:
            info = resolve(model_name, "gguf", self._models_dir)
            loaded = await asyncio.to_thread(self._load_blocking, info.path)
        except LuxaError as err:
            self._error = str(err)
            raise
        except Exception as err:  # llama.cpp reports a corrupt file as ValueError/RuntimeError
            self._error = f"cannot load GGUF model {model_name!r}: {err}"
            raise BackendError(self._error) from err
        self._error = None
        return loaded

    def _load_blocking(self, path: Path) -> LoadedModel:
        llama = self._new_llama(path)
        formatter = _formatter(llama, self._llm.chat_template or llama.metadata.get("tokenizer.chat_template"))
        return LoadedModel(llama, path, formatter, can_shift=prompt_cache.can_shift(llama))

    def _new_llama(self, path: Path) -> Any:
        from llama_cpp import Llama  # imported here: the GPU must be pinned before llama.cpp loads

        layers = self._backend_cfg.n_gpu_layers if self._gpu.on_gpu else 0
        llama = Llama(
            model_path=str(path),
            n_ctx=self._llm.context_tokens,
            n_threads=self._llm.threads,
            n_threads_batch=self._llm.threads,
            n_gpu_layers=layers,
            verbose=False,
        )
        log.info("llm backend %s: loaded %s (%d GPU layers)", self.name, path.name, layers)
        return llama

    async def swap(self, model_name: str, memory_margin: float) -> Path:
        """Load `model_name` while the current model keeps serving, then switch and free the old one."""
        path = resolve(model_name, "gguf", self._models_dir).path
        check_memory_for(path, memory_margin)
        async with self._load_lock:
            new = await self._load(model_name)
            old, self._model, self.model = self._model, new, model_name
        if old is not None:
            await asyncio.to_thread(old.free)
        log.info("llm backend %s: now serving %s", self.name, path.name)
        return path

    def _checkout_current(self) -> LoadedModel | None:
        """The serving model, held so that a concurrent swap cannot free it while in use."""
        while (model := self._model) is not None:
            if model.checkout():
                return model
        return None

    def count_tokens(self, text: str) -> int | None:
        model = self._checkout_current()
        if model is None:
            return None
        try:
            return len(model.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        finally:
            model.checkin()

    async def stream(self, request: GenerationRequest, stats: GenerationStats) -> AsyncGenerator[str, None]:
        if self._model is None:
            await self.start()  # a model that failed at start-up is retried when its breaker probes
        model = self._checkout_current()
        if model is None:
            raise BackendError(f"llm backend {self.name} was closed")
        try:
            # aclosing: leaving an `async for` does not close the inner generator, and only its
            # closing stops the worker thread.
            async with aclosing(self._stream(model, request, stats)) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            model.checkin()

    async def _stream(self, model: LoadedModel, request: GenerationRequest,
                      stats: GenerationStats) -> AsyncGenerator[str, None]:
        """The local voice loop comes first (Core/priority.py): work for anyone else waits for a voice
        turn to end, and one already generating stops at its next token and goes on after the turn
        from where it stopped (the prompt plus its answer so far; the prefix cache keeps most of it)."""
        budget_s = self._llm.prompt_eval_budget_s
        step_aside = None if is_voice() else (lambda: VOICE.busy)
        answer: list[str] = []
        while True:
            if step_aside is not None:
                await VOICE.wait_turn_over()
            current = request if not answer else replace(
                request, answer_so_far="".join(answer), max_tokens=max(1, request.max_tokens - len(answer)))
            stepped = threading.Event()

            def produce(stop: threading.Event, current: GenerationRequest = current,
                        stepped: threading.Event = stepped) -> Iterator[str]:
                return _generate(model, current, stats, stop, budget_s, step_aside, stepped)

            generation = iterate_in_thread(produce)
            async with aclosing(generation) as pieces:
                async for piece in pieces:
                    answer.append(piece)
                    yield piece
            if not stepped.is_set():
                return
            log.info("llm backend %s: a voice turn comes first; this answer goes on after it (%d tokens so far)",
                     self.name, len(answer))

    async def prime(self, request: GenerationRequest) -> None:
        """Run `request` to its end and drop the text: fills llama.cpp's prefix cache."""
        if self._model is None:
            return
        async for _ in self.stream(request, GenerationStats()):
            pass

    def health(self) -> dict:
        model = self._model
        return {
            "kind": self.kind,
            "model": self.model,
            "path": str(model.path) if model else None,
            "loaded": model is not None,
            "error": self._error,
        }

    async def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            await asyncio.to_thread(model.free)


def _generate(model: LoadedModel, request: GenerationRequest, stats: GenerationStats,
              stop: threading.Event, budget_s: float, step_aside: Callable[[], bool] | None = None,
              stepped: threading.Event | None = None) -> Iterator[str]:
    """Runs in the worker thread; returns as soon as `stop` is set, or `step_aside()` says so (then
    `stepped` is set), both checked every token."""
    with model.lock:
        llama = model.llama
        prompt = _prepare(model, request, budget_s)
        started = time.perf_counter()
        chunks = llama.create_completion(
            prompt=prompt.tokens,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stop + prompt.stop,
            stopping_criteria=prompt.stopping_criteria,
            repeat_penalty=request.repeat_penalty,
            stream=True,
        )
        first = True
        try:
            for chunk in chunks:
                if first:  # the prompt is evaluated before the first chunk comes out
                    model.rate.observe(prompt.uncached, time.perf_counter() - started)
                    first = False
                if stop.is_set():
                    return
                if step_aside is not None and step_aside():
                    if stepped is not None:
                        stepped.set()
                    return
                text = chunk["choices"][0]["text"]
                if text:
                    stats.tokens_out += 1
                    yield text
        finally:
            chunks.close()
            stats.context_tokens = llama.n_tokens
            stats.tokens_in = len(prompt.tokens)
            stats.tokens_evaluated = prompt.uncached


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    uncached: int  # tokens the KV cache could not serve: what the first token waits for
    stop: list[str]
    stopping_criteria: Any


def _prepare(model: LoadedModel, request: GenerationRequest, budget_s: float) -> Prompt:
    """Render, shorten to the context and the evaluation budget, and line the cache up with it."""
    llama = model.llama
    cached = llama.input_ids[: llama.n_tokens]
    rendered: dict[int, tuple[Any, list[int], prompt_cache.CachePlan]] = {}

    def measure(messages: Messages) -> tuple[int, int]:
        response = model.formatter(messages=messages)
        tokens = llama.tokenize(response.prompt.encode("utf-8"), add_bos=not response.added_special, special=True)
        if request.answer_so_far:
            tokens += llama.tokenize(request.answer_so_far.encode("utf-8"), add_bos=False, special=False)
        plan = prompt_cache.plan(cached, tokens)
        if plan.dropped and not model.can_shift:
            plan = prompt_cache.CachePlan(plan.prefix)
        rendered[len(messages)] = (response, tokens, plan)
        return len(tokens), len(tokens) - plan.reused

    fitted = fit(request.messages, measure, llama.n_ctx() - request.max_tokens, model.rate, budget_s)
    response, tokens, plan = rendered[len(fitted.messages)]
    if fitted.dropped_messages:
        log.info("llm: answering from a shorter history (%d oldest messages left out) to keep the first token "
                 "within llm.prompt_eval_budget_s=%g s", fitted.dropped_messages, budget_s)
    prompt_cache.apply(llama, plan)
    stop = response.stop if isinstance(response.stop, list) else [response.stop] if response.stop else []
    return Prompt(tokens, len(tokens) - plan.reused, stop, response.stopping_criteria)


def _formatter(llama: Any, template: str | None) -> Any:
    """The chat template (configured, else the GGUF metadata's) as llama-cpp-python renders it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    if not template:
        raise BackendError("the model has no chat template in its metadata; set llm.chat_template")

    def token_text(token: int) -> str:
        return llama.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    return Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(llama.token_eos()),
        bos_token=token_text(llama.token_bos()),
        stop_token_ids=[llama.token_eos()],
    )
