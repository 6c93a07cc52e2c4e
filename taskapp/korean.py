"""Korean particles chosen by the word they follow, so no sentence says "을(를)" or "(으)로".

    with_particle("진행 중", "로")    -> "진행 중으로"     (중 ends in a consonant)
    with_particle("완료", "로")       -> "완료로"
    with_particle("할 일", "로")      -> "할 일로"         (ㄹ takes 로, not 으로)
    with_particle("보고서", "을")     -> "보고서를"

The sound that decides is the final consonant (받침) of the last Hangul syllable. A word that ends
in a digit or a Latin letter is read aloud the Korean way (3 = 삼, "PDF" = 피디에프), so those get a
best guess; closing quotes and brackets are skipped.
"""

from __future__ import annotations

# particle pairs: (after a final consonant, after a vowel); 로 also follows ㄹ
PAIRS = {
    "을": ("을", "를"), "를": ("을", "를"),
    "이": ("이", "가"), "가": ("이", "가"),
    "은": ("은", "는"), "는": ("은", "는"),
    "과": ("과", "와"), "와": ("과", "와"),
    "으로": ("으로", "로"), "로": ("으로", "로"),
}
RIEUL = 8  # index of ㄹ among the final consonants
DIGIT_FINALS = {"0": 21, "1": RIEUL, "2": 0, "3": 16, "4": 0, "5": 0, "6": 1, "7": RIEUL, "8": RIEUL, "9": 0}
# Latin letters as their names end in Korean: l (엘) ends in ㄹ; m (엠), n (엔), r (알) too
LETTER_FINALS = {"l": RIEUL, "m": 16, "n": 4, "r": RIEUL}
TRAILING = "\"'”’」』)]}>›» .,!?"


def final_consonant(word: str) -> int:
    """The final consonant index (0: none, 8: ㄹ, ...) of `word`'s last sound."""
    text = word.rstrip(TRAILING)
    if not text:
        return 0
    last = text[-1]
    if "가" <= last <= "힣":
        return (ord(last) - ord("가")) % 28
    if last.isdigit():
        return DIGIT_FINALS.get(last, 0)
    return LETTER_FINALS.get(last.lower(), 0)


def particle(word: str, which: str) -> str:
    """The form of the particle `which` ("을", "를", "이", "가", "은", "는", "과", "와", "로", "으로")
    that follows `word`."""
    with_consonant, with_vowel = PAIRS[which]
    final = final_consonant(word)
    if with_vowel == "로":
        return "로" if final in (0, RIEUL) else "으로"
    return with_consonant if final else with_vowel


def with_particle(word: str, which: str) -> str:
    """`word` followed by the right form of the particle."""
    return f"{word}{particle(word, which)}"


def in_locale(word: str, which: str, locale: str) -> str:
    """For a placeholder of a translated sentence: in Korean the word carries its particle (the Korean
    sentence is written without it), in any other language the word is left as it is."""
    return with_particle(str(word), which) if str(locale).startswith("ko") else str(word)
