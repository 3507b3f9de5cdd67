"""Does a transcript stop mid-phrase? The words' half of "has the user finished?".

An end-of-turn model hears the voice; it cannot know that "turn on the" needs a noun. Read speech
pauses mid-sentence with a falling voice, and smart-turn scored such cuts as finished (0.7-0.99 on
"turn on the" and "due to the slow communication channels", docs/BENCHMARKS.md "End of turn").
Early STT has the words during the pause: a transcript that ends on a word that cannot end a
sentence (an article, a preposition, a conjunction, a possessive) or on a comma or an ellipsis
makes the endpointer wait for its maximum silence (Endpointer.expect_more).
"""
from __future__ import annotations

import re

# Words after which an English or French sentence cannot end; a transcript ending on one was cut.
OPEN_ENDED = {  # kept to words that never end a request: "turn the light on", "tell me more", "I think so" do
    "en": frozenset("""a an the my your his her its our their to of at with from by into onto than
        and or but nor because if although though whether unless whose""".split()),
    "fr": frozenset("""le la les l un une des du de d au aux mon ma mes ton ta tes son sa ses notre nos
        votre vos leur leurs cet cette ces à dans sur pour par avec sans chez vers entre et ou mais car
        que qu parce puisque lorsque dont ne""".split()),
}
TRAILING_OPEN = re.compile(r"(,|;|:|-|\.\.\.|…)\s*$")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def sounds_unfinished(text: str, language: str | None) -> bool:
    """True when `text` stops where no sentence can: on an open-ended word, or on a comma or ellipsis."""
    words = WORD.findall(text.lower())
    if not words:
        return False
    if TRAILING_OPEN.search(text.strip()):
        return True
    code = (language or "en").split("-")[0].split("_")[0].lower()
    last = words[-1].split("'")[-1]
    return last in OPEN_ENDED.get(code, OPEN_ENDED["en"])
