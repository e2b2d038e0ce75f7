"""Contact details from the chat request's visitor and from what visitors type."""

from __future__ import annotations

import re
from typing import Any

FIELDS = ("name", "email", "phone", "company")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d ()./-]{6,20}\d)(?!\w)")
_PHONE_CUE = re.compile(
    r"\b(?:phone|call|tel|telephone|mobile|cell|whatsapp|text me|sms|ring|reach me|number is)\b",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"\b(?i:my name is|my name's|i am|i'm|this is|call me)\s+([A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+){0,2})"
)
_COMPANY = re.compile(
    r"\b(?i:i work (?:at|for)|from the company|my company is|company:)\s+([A-Z][\w&.'-]*(?:\s+[A-Z][\w&.'-]*){0,3})"
)
_INTENT = re.compile(
    r"\b(?:pric(?:e|es|ing)|quote|buy|purchas\w*|demo|trial|sales|subscribe|subscription|plans?|"
    r"contact (?:me|us|you)|call me|email me|reach (?:me|out)|get in touch|interested in)\b",
    re.IGNORECASE,
)
ASK_MESSAGE = (
    "If you'd like our team to follow up, just leave your name and email address (or phone number) here."
)


def normalize_email(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    return value if _EMAIL.fullmatch(value) else None


def normalize_phone(value: str | None) -> str | None:
    """Digits with an optional leading +; 7 to 15 digits (E.164) or it is not a phone number."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15:
        return None
    return ("+" if value.strip().startswith("+") else "") + digits


def detect_contacts(text: str) -> dict[str, str]:
    """Contact details a visitor typed: validated email, plausible phone, stated name/company."""
    found: dict[str, str] = {}
    email = normalize_email(m.group(0)) if (m := _EMAIL.search(text)) else None
    if email:
        found["email"] = email
    # Order numbers and ticket ids are digit runs too: a bare number counts as a phone
    # only when the visitor says it is one (or writes it international, with a +).
    cue = bool(_PHONE_CUE.search(text))
    for m in _PHONE.finditer(text):
        candidate = m.group(1)
        if not (cue or candidate.startswith("+")):
            continue
        # Dates, versions and prices are digit runs too; a phone has 7+ digits and few dots.
        if candidate.count(".") > 1 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", candidate.strip()):
            continue
        if phone := normalize_phone(candidate):
            found["phone"] = phone
            break
    if m := _NAME.search(text):
        found["name"] = m.group(1).strip()
    if m := _COMPANY.search(text):
        found["company"] = m.group(1).strip().rstrip(".")
    return found


def shows_intent(text: str) -> bool:
    return bool(_INTENT.search(text))


def clean_visitor(visitor: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (visitor or {}).items():
        if key == "email":
            value = normalize_email(value)
        elif key == "phone":
            value = normalize_phone(value)
        if value and key in FIELDS:
            out[key] = str(value).strip()
    return out
