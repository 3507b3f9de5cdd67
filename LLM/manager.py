"""EnhancedLLMManager: one streamed answer per turn from the first healthy backend.

A turn always ends with something to say: the configured backends are tried in priority order
behind circuit breakers, and when all of them fail the canned apology in the user's language is
the answer. Once a backend has produced text the turn stays on it, because the user is already
hearing that answer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import AsyncGenerator, Callable

from Config.schema import LuxaConfig
from Core.breaker import BreakerState
from Core.errors import AllBackendsFailed, BackendError, ConfigError, LuxaError
from Core.fallback import FallbackChain
from Core.gpu import GpuStatus
from Core.text import SpeechCleaner
from LLM import guard
from LLM.backends.base import GenerationRequest, GenerationStats, LlmBackend
from LLM.backends.gguf import GgufBackend
from LLM.backends.openai_compat import OpenAIBackend
from LLM.conversation import CUT_MARK, Conversation, estimate_tokens
from LLM.errors import SwapRefused
from LLM.guard import SentenceLimit
from LLM.inputs import check_user_text
from LLM.metrics import LlmMetrics

log = logging.getLogger(__name__)
APOLOGY = "apology"


@dataclass(frozen=True)
class ChatResult:
    reply: str
    backend: str
    latency_s: float
    first_token_s: float | None
    tokens: int
    intent: str | None = None  # set when a command handler answered instead of the LLM


@dataclass(frozen=True)
class GenerationOptions:
    """One request's own limits (the OpenAI route's max_tokens, temperature, stop); None keeps llm.*."""

    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()  # added to llm.stop, which the chat template needs
    max_sentences: int | None = None  # 0: no limit (a client that reads, not a voice)


@dataclass
class _Turn:
    """What one turn collected while it streamed; becomes a ChatResult and metrics."""

    started: float = field(default_factory=time.perf_counter)
    backend: str = "none"
    pieces: list[str] = field(default_factory=list)
    first_token_s: float | None = None
    latency_s: float = 0.0
    stats: GenerationStats = field(default_factory=GenerationStats)
    cleaner: SpeechCleaner = field(default_factory=SpeechCleaner)

    @property
    def reply(self) -> str:
        return "".join(self.pieces).strip()

    def result(self) -> ChatResult:
        return ChatResult(self.reply, self.backend, self.latency_s, self.first_token_s, self.stats.tokens_out)


class AnswerStream:
    """One streamed answer: its cleaned text pieces, then its own result (backend, timings, text).

    The result belongs to this answer alone: the voice loop and the control API may stream at the
    same time, and a manager-wide "last result" read after an await could be the other's.
    """

    def __init__(self, pieces: AsyncGenerator[str, None], result: Callable[[], ChatResult]) -> None:
        """`result()` gives the answer's result so far (an LLM turn's, or a command handler's)."""
        self._pieces = pieces
        self._result = result

    def __aiter__(self) -> AnswerStream:
        return self

    async def __anext__(self) -> str:
        return await anext(self._pieces)

    async def aclose(self) -> None:
        """Stop generating (a barge-in, a client gone); what was said stays in the history."""
        await self._pieces.aclose()

    @property
    def result(self) -> ChatResult:
        """So far while streaming; final once the iterator is exhausted or closed."""
        return self._result()


class EnhancedLLMManager:
    def __init__(self, config: LuxaConfig, gpu: GpuStatus, clock: Callable[[], float] = time.monotonic,
                 backends: list[LlmBackend] | None = None):
        """`backends` replaces the configured ones (tests of the chain logic); `clock` drives the breakers."""
        self.config = config
        self.gpu = gpu
        llm = config.llm
        self.backends: list[LlmBackend] = backends if backends is not None else self._configured_backends()
        if not self.backends:
            raise ConfigError("llm.backends: no backend is enabled; enable at least one (e.g. llm.backends.primary.enabled=true)")
        self.chain: FallbackChain[LlmBackend] = FallbackChain.of(
            "llm", [(b.name, b, llm.first_token_timeout_s) for b in self.backends], config.circuit_breaker, clock)
        self.metrics = LlmMetrics()
        self.conversation = self.new_conversation()

    def _configured_backends(self) -> list[LlmBackend]:
        llm, built = self.config.llm, list[LlmBackend]()
        for name, cfg in sorted(self.config.llm.backends.items(), key=lambda item: item[1].priority):
            if not cfg.enabled:
                continue
            if cfg.kind == "gguf":
                built.append(GgufBackend(name, cfg, llm, self.config.models.dir, self.gpu, self.config.llm_contexts()))
            else:
                built.append(OpenAIBackend(name, cfg, llm.total_timeout_s))
        return built

    def new_conversation(self) -> Conversation:
        llm = self.config.llm
        return Conversation(llm.system_prompt, llm.history_token_budget, self.count_tokens)

    def count_tokens(self, text: str) -> int:
        """Counted by the first loaded local model, the one that normally serves."""
        for backend in self.backends:
            count = getattr(backend, "count_tokens", None)
            tokens = count(text) if count else None
            if tokens is not None:
                return tokens
        return estimate_tokens(text)

    async def start(self) -> None:
        """Load every backend; one that cannot load is skipped (breaker open), never fatal."""
        await self.chain.start(lambda backend: backend.start())
        await self._prime_system_prompt()

    async def _prime_system_prompt(self) -> None:
        """Evaluate the system prompt once at start-up. llama.cpp reuses the longest prefix it has
        already evaluated, so the first question after a start only pays for its own words
        (SmolLM2 on one thread: about 0.3 s less to the first token)."""
        llm = self.config.llm
        messages = [{"role": "system", "content": self.instructions(None)}, {"role": "user", "content": "Hello."}]
        request = GenerationRequest(messages, 1, 0.0, 1.0, list(llm.stop), llm.repeat_penalty)
        for member in self.chain.members:
            prime = getattr(member.backend, "prime", None)
            if prime is None or member.breaker.state is not BreakerState.CLOSED:
                continue
            try:
                async with asyncio.timeout(llm.first_token_timeout_s):
                    await prime(request)
            except (LuxaError, TimeoutError) as err:  # a slow first turn, nothing worse
                log.warning("llm backend %s: system prompt not primed: %s", member.name, err or "timed out")

    def stream(self, text: str, conversation: Conversation | None = None,
               language: str | None = None, options: GenerationOptions | None = None) -> AnswerStream:
        """Cleaned text pieces as they come; close the stream (or cancel) to stop generation.

        Raises LlmInputError at once for empty, oversized or binary text.
        """
        text = check_user_text(text, self.config.llm.max_input_chars)
        turn = _Turn()
        options = options or GenerationOptions()
        request = self._request(options)
        sentences = self.config.llm.max_sentences if options.max_sentences is None else options.max_sentences
        return AnswerStream(self._run_turn(text, conversation or self.conversation, language, request, sentences, turn),
                            turn.result)

    def _request(self, options: GenerationOptions) -> GenerationRequest:
        """The generation settings of one turn; the messages are filled in when it starts."""
        llm = self.config.llm
        return GenerationRequest([], options.max_tokens or llm.max_tokens,
                                 llm.temperature if options.temperature is None else options.temperature,
                                 llm.top_p, [*llm.stop, *options.stop], llm.repeat_penalty)

    async def chat(self, text: str, conversation: Conversation | None = None,
                   language: str | None = None, options: GenerationOptions | None = None) -> ChatResult:
        answer = self.stream(text, conversation, language, options)
        async for _ in answer:
            pass
        return answer.result

    async def _run_turn(self, text: str, conversation: Conversation, language: str | None,
                        request: GenerationRequest, max_sentences: int, turn: _Turn) -> AsyncGenerator[str, None]:
        """Stream one answer; an unusable opening (a recital, a repeat, nothing) is asked again
        with the question alone, once (LLM/guard.py)."""
        llm = self.config.llm
        earlier = conversation.replies_to_other_questions(text)
        conversation.add_user(text)
        prompt = self.instructions(language)  # the same every turn: the model's cache keeps it and the history
        instructions = self.instructions(language)  # what must not be read back (today's date may be)
        code = (language or "").split("-")[0].split("_")[0].lower() or None
        messages = [{"role": "system", "content": prompt}, *conversation.messages()[1:]]
        if guard.asks_when_or_where(text):  # in this turn's question only, never in the cached prefix
            messages[-1] = {"role": "user", "content": f"({self.context_line(language)}) {text}"}
        attempts = [messages, [messages[0], messages[-1]]]
        limit = SentenceLimit(max_sentences)
        deadline = asyncio.get_running_loop().time() + llm.total_timeout_s
        finished = False
        try:
            for attempt, chat in enumerate(attempts):
                last = attempt == len(attempts) - 1
                held: str | None = ""  # the opening, until it is judged; None once it was let through
                retry = False
                later = guard.LaterSentences(earlier, instructions)
                pieces = self._generate(replace(request, messages=chat), turn, deadline)
                try:
                    async for piece in pieces:
                        if held is not None:
                            held += piece
                            if not guard.ready(held):
                                continue
                            reason = guard.problem(held, instructions, earlier, code)
                            if reason and not last:
                                retry = True
                                break
                            piece, held = held, None
                        if said := limit.feed(later.feed(piece)):
                            yield self._said(turn, said)
                        if limit.done or later.done:
                            break
                    if not retry and held is not None:  # a short answer that ended before it was judged
                        reason = guard.problem(held, instructions, earlier, code)
                        if reason and not last:
                            retry = True
                        elif guard.words(held) and (said := limit.feed(later.feed(held) + later.flush())):
                            yield self._said(turn, said)  # never "…" alone
                    elif not retry and not limit.done and (said := limit.feed(later.flush())):
                        yield self._said(turn, said)
                finally:
                    await pieces.aclose()
                if not retry:
                    break
                log.info("llm: the answer is unusable (%s); asking again with the question alone", reason)
                # the history led the model astray, and a later turn built on it would evaluate all of it
                # cold (the cache now holds the question alone): keep going from this exchange only
                conversation.keep_only_last_question()
                self.metrics.retries.labels(reason).inc()
            if not turn.pieces:
                apology = self._apology(language)
                turn.backend = APOLOGY
                self._said(turn, apology)
                self.chain.metrics.requests.labels(APOLOGY, "ok").inc()
                yield apology
            finished = True
        finally:
            self._finish(turn, conversation, finished)

    def _said(self, turn: _Turn, text: str) -> str:
        if turn.first_token_s is None:
            turn.first_token_s = time.perf_counter() - turn.started
        turn.pieces.append(text)
        return text

    async def _generate(self, request: GenerationRequest, turn: _Turn, deadline: float) -> AsyncGenerator[str, None]:
        """Cleaned pieces from the first healthy backend, until the end, the deadline or a failure."""
        llm = self.config.llm
        chain = self.chain.stream(lambda backend: self._cleaned(backend, request, turn))
        said = False
        try:
            while True:
                try:
                    # asyncio.timeout_at, not wait_for: wait_for runs anext() in a task of its own,
                    # and a second cancellation could leave the chain "already running" at aclose()
                    async with asyncio.timeout_at(deadline):
                        backend, piece = await anext(chain)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    log.warning("llm answer cut at llm.total_timeout_s=%g s", llm.total_timeout_s)
                    break
                except AllBackendsFailed as err:
                    log.error("%s; answering with the apology", err)
                    break
                except BackendError as err:  # failed mid-answer: what was said stays said
                    log.error("%s", err)
                    break
                turn.backend, said = backend, True
                yield piece
            # an answer cut by a failure or the time limit keeps the word the cleaner held back
            if said and (tail := turn.cleaner.flush()):
                yield tail
        finally:
            await chain.aclose()

    def instructions(self, language: str | None) -> str:
        llm = self.config.llm
        return llm.system_prompts.get((language or "en").split("-")[0].split("_")[0].lower(), llm.system_prompt)

    def context_line(self, language: str | None) -> str:
        """Today's date and the place, for a question about them. Never in the system prompt: a prompt
        that changes with the question voids the model's cache of the whole history (measured in the
        soak: +100 MB and first audio 0.95 -> 1.1 s), and a 135M model given the date every turn answers
        "thank you" with it. The time is never given: commands answer it from the clock."""
        code = (language or "en").split("-")[0].split("_")[0].lower()
        where = self.config.intents.location
        place = f" {'Tu es à' if code == 'fr' else 'You are in'} {where}." if where else ""
        return f"{guard.today(code, self.config.intents.time_zone)}{place}"

    async def _cleaned(self, backend: LlmBackend, request: GenerationRequest, turn: _Turn) -> AsyncGenerator[str, None]:
        """One backend's stream made speakable; empty pieces are skipped so 'first item' means speech."""
        stats = turn.stats = GenerationStats()
        cleaner = turn.cleaner = SpeechCleaner()
        raw = backend.stream(request, stats)
        try:
            async for piece in raw:
                if text := cleaner.feed(piece):
                    yield text
            if tail := cleaner.flush():
                yield tail
        finally:
            await raw.aclose()

    def _finish(self, turn: _Turn, conversation: Conversation, finished: bool) -> None:
        turn.latency_s = time.perf_counter() - turn.started
        reply = turn.reply
        conversation.add_assistant(reply if finished else f"{reply}{CUT_MARK}")
        conversation.last_reply = reply
        if turn.backend != APOLOGY and turn.backend != "none":
            s = turn.stats
            self.metrics.observe_turn(turn.backend, turn.first_token_s, turn.latency_s,
                                      s.tokens_in, s.tokens_out, s.context_tokens, s.tokens_evaluated)

    def _apology(self, language: str | None) -> str:
        apologies = self.config.llm.apology
        code = (language or "en").split("-")[0].split("_")[0].lower()
        return apologies.get(code) or apologies.get("en") or next(iter(apologies.values()), "")

    async def swap(self, backend_name: str, model: str) -> None:
        """Load `model` for `backend_name` while it keeps serving; turns after this use the new one."""
        member = self.chain.member(backend_name)
        if not isinstance(member.backend, GgufBackend):
            raise SwapRefused(f"llm backend {backend_name!r} is not a gguf backend; only local models can be hot-swapped")
        await member.backend.swap(model, self.config.llm.swap_memory_margin)
        member.breaker.record_success()  # a freshly loaded model starts with a clean record

    def health(self) -> dict:
        states = self.chain.health()
        return {
            "stage": "llm",
            "backends": {b.name: {**b.health(), "breaker": states[b.name]} for b in self.backends},
            "history_tokens": self.conversation.history_tokens(),
        }

    async def close(self) -> None:
        for backend in self.backends:
            await backend.close()
