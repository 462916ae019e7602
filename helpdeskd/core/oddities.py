"""How odd a short text reads: the measure that picks a charset for a subject or a name.

Pure. A detector needs more bytes than a subject has; but the wrong charset's reading of a
few bytes shows itself in what real text never holds: symbols glued to letters (Shift_JIS
read as windows-1252: ‚¨Šè‚¢), scripts mixed inside a word (Mьller), Latin words made of
accents alone (Hebrew or Cyrillic read as latin-1), lower-case letters before upper-case
ones (KOI8-R read as windows-1251), kana outside Japanese, rare characters of a wide charset
(GBK, UHC) and a double-byte character that swallowed the ASCII letter after a lone 8-bit
byte (dzia³a read as Big5). charsets.py weighs the readings by it.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

# The common characters of a wide charset: random bytes read as GBK or UHC land outside them.
COMMON_CORE = {"gb18030": "gb2312", "cp949": "euc_kr"}
JAPANESE = frozenset({"cp932", "shift_jis", "euc_jp", "iso2022-jp-ms", "iso2022_jp"})
SCRIPT_OF = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "IDEOGRAPHIC": "CJK", "MICRO": "LATIN"}
TYPOGRAPHY = frozenset("‘’“”„–—…•€«»·°©®™×¿¡")
# Double-byte charsets whose second byte may be ASCII (a letter even).
MULTI_BYTE = frozenset({"cp932", "shift_jis", "gb18030", "big5", "cp950", "big5hkscs", "cp949"})
RARE_LETTERS = frozenset("ƒ")  # windows-1252's florin: Shift_JIS katakana's lead byte
ACCENTED_WORD = 4  # letters: a Latin word this long is never all accents (Hebrew read as latin)
# a word with a non-ASCII character in it, bounded: no backtracking over long ASCII runs
NON_ASCII_WORD = re.compile(r"[!-~]{0,30}[^\x00-\x7f]\S{0,60}")


def oddities(text: str, codec: str) -> int:
    """How much of a short text real text never holds: controls, scripts mixed inside a
    word, symbols glued to letters, all-accent or case-flipping words, kana outside
    Japanese, half-width kana, characters outside a wide charset's common core."""
    core = COMMON_CORE.get(codec)
    odd = 0
    for word in NON_ASCII_WORD.findall(text):
        scripts = [_script(ch) for ch in word]
        for index, ch in enumerate(word):
            if ch.isascii():
                continue
            odd += _odd_character(ch, scripts, index, codec, core)
            odd += _after_ascii(word, index) and _eats_a_letter(ch, codec)
        odd += _odd_word(word, scripts)
    return odd


def _after_ascii(word: str, index: int) -> bool:
    return index > 0 and word[index - 1].isascii() and word[index - 1].isalnum()


def _eats_a_letter(ch: str, codec: str) -> bool:
    """A double-byte character whose second byte is an ASCII letter, right after an ASCII
    letter or digit: most likely one 8-bit byte of a single-byte charset inside a Latin word
    (dzia³a read as Big5)."""
    if codec not in MULTI_BYTE:
        return False
    data = ch.encode(codec, "replace")
    return len(data) == 2 and data[1] < 0x80 and chr(data[1]).isalpha()


def _odd_character(ch: str, scripts: list[str], index: int, codec: str, core: str | None) -> int:
    script = scripts[index]
    if unicodedata.category(ch)[0] == "C" or ch == "\ufffd":
        return 3
    if script == "HALFWIDTH" or ch in RARE_LETTERS:
        return 1
    if _is_kana(ch) and codec not in JAPANESE:
        return 1
    if core and not _encodes(ch, core):
        return 1
    neighbours = scripts[max(0, index - 1) : index] + scripts[index + 1 : index + 2]
    if unicodedata.category(ch)[0] == "M":  # a combining accent (windows-1258) on its letter
        return int(index == 0 or not scripts[index - 1])
    if "\u3000" <= ch <= "\u303f" or "\uff01" <= ch <= "\uff60":
        return int(any(n and n != "CJK" and n != "ASCII" for n in neighbours))  # 【】「」、。！
    if not script:  # a symbol glued to a letter: a piece of another charset's letter
        return int(ch not in TYPOGRAPHY and any(neighbours))
    mixed = {n for n in neighbours if n and n != script}
    return int(bool(mixed - {"ASCII"}) or ("ASCII" in mixed and script not in ("LATIN", "CJK")))


def _odd_word(word: str, scripts: list[str]) -> int:
    """Latin words are mostly ASCII; a lower-case letter before an upper-case one inside a
    word is a charset's case rows swapped (KOI8-R read as windows-1251)."""
    letters = [ch for ch in word if ch.isalpha()]
    latin = all(s == "LATIN" for s in scripts if s) and "ASCII" not in scripts
    odd = int(latin and len(letters) >= ACCENTED_WORD)
    pairs = itertools.pairwise(letters)
    return odd + sum(1 for a, b in pairs if a.islower() and b.isupper() and not b.isascii())


def _script(ch: str) -> str:
    """The script of a letter ("ASCII" for an ASCII one), "" for anything else."""
    if ch.isascii():
        return "ASCII" if ch.isalpha() else ""
    name = unicodedata.name(ch, "")
    if not name or not (ch.isalpha() or _is_kana(ch)):
        return ""
    if name.startswith("HANGUL LETTER"):
        return ""  # a lone jamo: a piece of a syllable, not text
    first = name.split()[0]
    return SCRIPT_OF.get(first, first)


def _is_kana(ch: str) -> bool:
    return "\u3041" <= ch <= "\u30ff"


def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
