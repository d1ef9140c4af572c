"""What the HTTP app says when it refuses a request, in Spanish and English: the language
the browser asks for (Accept-Language), else the gateway's default language.

Example:
    >>> say({"accept-language": "en-GB,en;q=0.8"}, "too_many", "es", seconds=6)
    'Too many sign-in attempts. Try again in 6 s.'
    >>> say({}, "too_many", "es", seconds=6)
    'Demasiados intentos de entrar. Vuelve a intentarlo en 6 s.'
"""

from __future__ import annotations

from collections.abc import Mapping

WORDS = {
    "es": {
        "too_large": "La petición es demasiado grande: se aceptan hasta {limit} bytes "
                     "([http] max_body).",
        "too_many": "Demasiados intentos de entrar. Vuelve a intentarlo en {seconds} s.",
        "wrong_password": "Usuario o contraseña incorrectos.",
        "form_expired": "El formulario caducó; vuelve a intentarlo.",
        "bad_moment": "La fecha «{value}» no es válida: escribe AAAA-MM-DDTHH:MM, entre los "
                      "años {first} y {last}.",
    },
    "en": {
        "too_large": "The request is too large: at most {limit} bytes are accepted "
                     "([http] max_body).",
        "too_many": "Too many sign-in attempts. Try again in {seconds} s.",
        "wrong_password": "Wrong user name or password.",
        "form_expired": "The form expired; please try again.",
        "bad_moment": "The date «{value}» is not valid: write YYYY-MM-DDTHH:MM, between "
                      "the years {first} and {last}.",
    },
}


def locale_of(headers: Mapping[str, str], default: str = "es") -> str:
    """The first of "es"/"en" the Accept-Language header prefers, else `default`."""
    wanted = []
    for position, part in enumerate(headers.get("accept-language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        try:
            weight = float(params.strip().removeprefix("q=")) if params else 1.0
        except ValueError:
            weight = 0.0
        language = tag.strip().split("-", 1)[0].lower()
        if language in WORDS and weight > 0:
            wanted.append((-weight, position, language))
    return min(wanted)[2] if wanted else (default if default in WORDS else "es")


def say(headers: Mapping[str, str], key: str, default: str = "es", **values: object) -> str:
    """The refusal `key` in the request's language, with `values` filled in."""
    return WORDS[locale_of(headers, default)][key].format(**values)
