"""A GGUF model served in-process by llama-cpp-python.

`llm.contexts` Llama instances of the model file per backend (LLM/backends/context_pool.py), each
used by one generation at a time: llama.cpp keeps one KV cache per context, so two turns
interleaving on one would corrupt each other, and with one context a room's question waits for
another room's whole answer. The weights are mmapped, shared by the contexts; each adds its KV
cache and compute buffers. Loading, generation and freeing all run in worker threads; the event
loop never blocks on the model.
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
from LLM.backends.context_pool import ContextPool, Lease
from LLM.backends.prompt_fit import EvalRate, Messages, fit
from LLM.backends.threaded import iterate_in_thread
from LLM.errors import SwapRefused

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """The model's contexts plus what keeps them alive while a turn still uses one after a swap."""

    pool: ContextPool
    path: Path
    formatter: Any  # the chat template that turns messages into the prompt text
    threads: int = 1  # llm.threads: what one generation alone uses; answers running together share them
    batch_threads: int = 1  # llm.batch_threads: the same for evaluating a prompt
    rate: EvalRate = field(default_factory=EvalRate)
    can_shift: bool = False
    freed: bool = False
    _users: int = 0
    _retiring: bool = False
    _idle: threading.Condition = field(default_factory=threading.Condition)

    @property
    def llama(self) -> Any:
        """The first context: the tokenizer and the metadata, the same in every context."""
        return self.pool.contexts[0]

    @property
    def busy(self) -> int:
        """Contexts generating now."""
        return self.pool.in_use

    def threads_now(self) -> tuple[int, int]:
        """Threads (generating, evaluating a prompt) for one generation while `busy` run: together
        no more than configured, so two answers on 2 cores do not oversubscribe them (llama.cpp's
        threads spin at their barriers)."""
        running = max(1, self.pool.in_use)
        return max(1, self.threads // running), max(1, self.batch_threads // running)

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
        """Blocking: waits for the turns still using this model (every context), then releases its memory."""
        with self._idle:
            self._idle.wait_for(lambda: self._users == 0)
            self._retiring = True
        self.pool.wait_all_free()
        for llama in self.pool.contexts:
            llama.close()
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

    def __init__(self, name: str, backend: LlmBackendConfig, llm: LlmConfig, models_dir: str, gpu: GpuStatus,
                 contexts: int = 1):
        """`contexts`: llm.contexts resolved (LuxaConfig.llm_contexts()): answers that generate at once."""
        self.name = name
        self.contexts = contexts
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
        contexts: list[Any] = []
        try:
            for index in range(self.contexts):
                contexts.append(self._new_llama(path, index))
        except BaseException:
            for llama in contexts:
                llama.close()
            raise
        llama = contexts[0]
        formatter = _formatter(llama, self._llm.chat_template or llama.metadata.get("tokenizer.chat_template"))
        return LoadedModel(ContextPool(contexts), path, formatter, self._llm.threads, self._llm.batch_threads,
                           can_shift=prompt_cache.can_shift(llama))

    def _new_llama(self, path: Path, index: int = 0) -> Any:
        from llama_cpp import Llama  # imported here: the GPU must be pinned before llama.cpp loads

        layers = self._backend_cfg.n_gpu_layers if self._gpu.on_gpu else 0
        llama = Llama(
            model_path=str(path),
            n_ctx=self._llm.context_tokens,
            n_threads=self._llm.threads,
            n_threads_batch=self._llm.batch_threads,
            n_gpu_layers=layers,
            flash_attn=self._llm.flash_attn,
            verbose=False,
        )
        log.info("llm backend %s: loaded %s (%d GPU layers, context %d of %d)", self.name, path.name, layers,
                 index + 1, self.contexts)
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

    async def stream(self, request: GenerationRequest, stats: GenerationStats,
                     lru: bool = False) -> AsyncGenerator[str, None]:
        if self._model is None:
            await self.start()  # a model that failed at start-up is retried when its breaker probes
        model = self._checkout_current()
        if model is None:
            raise BackendError(f"llm backend {self.name} was closed")
        try:
            # aclosing: leaving an `async for` does not close the inner generator, and only its
            # closing stops the worker thread.
            async with aclosing(self._stream(model, request, stats, lru)) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            model.checkin()

    async def _stream(self, model: LoadedModel, request: GenerationRequest, stats: GenerationStats,
                      lru: bool = False) -> AsyncGenerator[str, None]:
        """The local voice loop comes first (Core/priority.py): work for anyone else waits for a voice
        turn to end, and one already generating stops at its next token and goes on after the turn
        from where it stopped (the prompt plus its answer so far; the prefix cache keeps most of it).
        `lru`: take the least recently used free context, whatever its cache (priming every one)."""
        budget_s = self._llm.prompt_eval_budget_s
        step_aside = None if is_voice() else (lambda: VOICE.busy)
        answer: list[str] = []
        while True:
            if step_aside is not None:
                await VOICE.wait_turn_over()
            current = request if not answer else replace(
                request, answer_so_far="".join(answer), max_tokens=max(1, request.max_tokens - len(answer)))
            stepped = threading.Event()
            # the context whose cache holds most of this prompt (this conversation's, as a rule);
            # rendering and tokenizing it takes ~5 ms for 2300 tokens: off the event loop
            tokens = await asyncio.to_thread(_prompt_tokens, model, current) \
                if len(model.pool.contexts) > 1 and not lru else None
            lease = Lease(model.pool, await model.pool.take(tokens))

            def produce(stop: threading.Event, current: GenerationRequest = current, lease: Lease = lease,
                        stepped: threading.Event = stepped) -> Iterator[str]:
                return _generate(model, lease, current, stats, stop, budget_s, step_aside, stepped)

            try:
                generation = iterate_in_thread(produce)
                async with aclosing(generation) as pieces:
                    async for piece in pieces:
                        answer.append(piece)
                        yield piece
            finally:
                lease.drop()
            if not stepped.is_set():
                return
            log.info("llm backend %s: a voice turn comes first; this answer goes on after it (%d tokens so far)",
                     self.name, len(answer))

    async def prime(self, request: GenerationRequest) -> None:
        """Run `request` to its end on every context and drop the text: fills llama.cpp's prefix caches.
        One after the other, the least recently used first: each context gets its turn."""
        if self._model is None:
            return
        for _ in range(self.contexts):
            async for _ in self.stream(request, GenerationStats(), lru=True):
                pass

    def health(self) -> dict:
        model = self._model
        return {
            "kind": self.kind,
            "model": self.model,
            "path": str(model.path) if model else None,
            "loaded": model is not None,
            "contexts": self.contexts,
            "contexts_busy": model.busy if model else 0,
            "error": self._error,
        }

    async def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            await asyncio.to_thread(model.free)


def _generate(model: LoadedModel, lease: Lease, request: GenerationRequest, stats: GenerationStats,
              stop: threading.Event, budget_s: float, step_aside: Callable[[], bool] | None = None,
              stepped: threading.Event | None = None) -> Iterator[str]:
    """Runs in the worker thread on the leased context, given back at the end; returns as soon as
    `stop` is set, or `step_aside()` says so (then `stepped` is set), both checked every token."""
    if not lease.begin():
        return
    try:
        llama = lease.context
        threads = _set_threads(llama, model.threads_now(), None)
        prompt = _prepare(model, llama, request, budget_s)
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
                threads = _set_threads(llama, model.threads_now(), threads)  # another answer started or ended
                text = chunk["choices"][0]["text"]
                if text:
                    stats.tokens_out += 1
                    yield text
        finally:
            chunks.close()
            stats.context_tokens = llama.n_tokens
            stats.tokens_in = len(prompt.tokens)
            stats.tokens_evaluated = prompt.uncached
    finally:
        lease.end()


def _set_threads(llama: Any, wanted: tuple[int, int], current: tuple[int, int] | None) -> tuple[int, int]:
    """Between two tokens, on the generating thread: the context's thread counts follow the load."""
    if wanted != current:
        llama._ctx.set_n_threads(*wanted)
    return wanted


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    uncached: int  # tokens the KV cache could not serve: what the first token waits for
    stop: list[str]
    stopping_criteria: Any


def _render(model: LoadedModel, messages: Messages, answer_so_far: str) -> tuple[Any, list[int]]:
    """The chat template's rendering of `messages` and its tokens, the answer so far after them."""
    llama = model.llama
    response = model.formatter(messages=messages)
    tokens = llama.tokenize(response.prompt.encode("utf-8"), add_bos=not response.added_special, special=True)
    if answer_so_far:
        tokens += llama.tokenize(answer_so_far.encode("utf-8"), add_bos=False, special=False)
    return response, tokens


def _prompt_tokens(model: LoadedModel, request: GenerationRequest) -> list[int]:
    return _render(model, request.messages, request.answer_so_far)[1]


def _prepare(model: LoadedModel, llama: Any, request: GenerationRequest, budget_s: float) -> Prompt:
    """Render, shorten to the context and the evaluation budget, and line `llama`'s cache up with it."""
    cached = llama.input_ids[: llama.n_tokens]
    rendered: dict[int, tuple[Any, list[int], prompt_cache.CachePlan]] = {}

    def measure(messages: Messages) -> tuple[int, int]:
        response, tokens = _render(model, messages, request.answer_so_far)
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
