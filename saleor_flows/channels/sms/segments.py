"""How many parts (segments) an SMS is billed as, and the numbers a preview shows.

GSM 03.38: the basic set costs one septet a character, the extension set two
(escape + character). Anything else forces UCS-2 for the whole message.
"""

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
# (units in a single message, units per part once split, with a 6/7-unit concatenation header)
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def is_gsm7(body: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in body)


def _units(body: str) -> tuple[str, list[int]]:
    if is_gsm7(body):
        return "GSM-7", [2 if char in GSM7_EXTENSION else 1 for char in body]
    return "UCS-2", [2 if ord(char) > 0xFFFF else 1 for char in body]


def segments(body: str) -> tuple[str, int]:
    """``(encoding, count)``: how many SMS parts ``body`` is billed as.

    GSM-7 when every character is in the GSM alphabet: 160 septets in one part,
    153 a part once split (extension characters such as ``€`` take two septets
    and are never split across parts). Otherwise UCS-2: 70 UTF-16 units in one
    part, 67 once split (an emoji takes two units, never split). An empty body
    still counts as one part.
    """
    encoding, sizes = _units(body)
    single, part = LIMITS[encoding]
    if sum(sizes) <= single:
        return encoding, 1
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return encoding, count


def preview_sms(text: str) -> dict:
    """What an editor shows under an SMS body: encoding, parts, length and the room per part.

    ``characters`` counts what the encoding counts (septets for GSM-7, UTF-16
    units for UCS-2), so "161 / 160" in a preview means a second part.
    ``ucs2_characters`` lists the characters that forced UCS-2, so the editor
    can say which one to replace (a curly quote, an emoji) to halve the cost.
    """
    encoding, sizes = _units(text)
    count = segments(text)[1]
    single, part = LIMITS[encoding]
    forcing = sorted({char for char in text if char not in GSM7_BASIC and char not in GSM7_EXTENSION})
    return {"encoding": encoding, "segments": count, "characters": sum(sizes),
            "per_segment": single if count == 1 else part, "ucs2_characters": forcing}
