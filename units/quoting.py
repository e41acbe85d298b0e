"""Word splitting with systemd's quoting and C escapes.

This mirrors systemd's `extract_first_word()` with the UNQUOTE and CUNESCAPE
flags: words are separated by whitespace; a `'` or `"` anywhere in a word
opens a quoted part that runs to the matching quote (whitespace kept, quotes
removed); `\\` escapes are decoded both inside and outside quotes. An unknown
escape such as `\\q` is kept as written and reported, as systemd does with
"Ignoring unknown escape sequences".
"""

from __future__ import annotations

from dataclasses import dataclass

from unitmgr.units.values import UnitValueError

WHITESPACE = " \t\n\r"

_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip
_HEX = "0123456789abcdefABCDEF"


@dataclass
class Word:
    """One extracted word and whether it contained an unknown escape sequence."""

    text: str
    unknown_escape: bool = False


def _decode_escape(text: str, index: int) -> tuple[str | None, int]:
    """Decode the escape whose letter is at `text[index]`; return (result, next index).

    The result is None for an unknown or malformed escape.
    """
    letter = text[index]
    if letter in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[letter], index + 1
    if letter == "x":
        digits = text[index + 1 : index + 3]
        if len(digits) == 2 and all(c in _HEX for c in digits) and digits != "00":
            return chr(int(digits, 16)), index + 3
        return None, index
    if letter in "uU":
        count = 4 if letter == "u" else 8
        digits = text[index + 1 : index + 1 + count]
        if len(digits) == count and all(c in _HEX for c in digits):
            code = int(digits, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), index + 1 + count
        return None, index
    if letter in "01234567":
        digits = text[index : index + 3]
        if len(digits) == 3 and all(c in "01234567" for c in digits):
            code = int(digits, 8)
            if 0 < code < 256:
                return chr(code), index + 3
        return None, index
    return None, index


def _read_backslash(text: str, position: int) -> tuple[str | None, int]:
    """Decode the escape at `text[position]` (a backslash); return (result or None, next index).

    For an unknown escape the result is None and the two characters are skipped;
    a lone trailing backslash is skipped alone, as systemd's relaxed mode keeps both.
    """
    if position + 1 >= len(text):
        return None, position + 1
    decoded, after = _decode_escape(text, position + 1)
    if decoded is None:
        return None, position + 2
    return decoded, after


def next_word(text: str, position: int) -> tuple[Word | None, int]:
    """Extract the word starting at or after `position`; return (word, position after it).

    Returns (None, len(text)) when only whitespace is left. Raises
    `UnitValueError` for an unterminated quote.
    """
    length = len(text)
    while position < length and text[position] in WHITESPACE:
        position += 1
    if position >= length:
        return None, length

    chars: list[str] = []
    unknown = False
    quote = ""
    while position < length:
        char = text[position]
        if char == "\\":
            decoded, after = _read_backslash(text, position)
            chars.append(text[position:after] if decoded is None else decoded)
            unknown = unknown or decoded is None
            position = after
        elif quote:
            if char == quote:
                quote = ""
            else:
                chars.append(char)
            position += 1
        elif char in "'\"":
            quote = char
            position += 1
        elif char in WHITESPACE:
            break
        else:
            chars.append(char)
            position += 1
    if quote:
        raise UnitValueError(
            f"Unbalanced quoting in '{text}'; close the {quote} quote or escape it as \\{quote}"
        )
    return Word("".join(chars), unknown), position


def split_words(text: str) -> list[Word]:
    """Split `text` into unquoted, unescaped words."""
    words: list[Word] = []
    position = 0
    while True:
        word, position = next_word(text, position)
        if word is None:
            return words
        words.append(word)


def quote_word(word: str) -> str:
    """Return `word` quoted so that `split_words()` yields it back unchanged."""
    if word and not any(c in word for c in WHITESPACE + "'\"\\"):
        return word
    escaped = word.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
