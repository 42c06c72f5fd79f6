"""The observable translation function kv rules use: ``text: tr._("Pay")``.

The kv compiler binds every ``x.y`` it sees in a rule; for ``tr._`` it calls ``tr.fbind("_",
...)``. Those bindings are kept here and fired on a language switch, so every label re-renders
live without a screen knowing about languages (the pattern of Electrum's Kivy GUI).
"""

from __future__ import annotations

from typing import Any

from kivy.event import Observable

from tvapp.i18n import DEFAULT_LANGUAGE, check_language, translations


class Translator(Observable):
    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        super().__init__()
        self.language = check_language(language)
        self._gettext = translations(language).gettext
        self._observers: dict[int, tuple[Any, tuple]] = {}
        self._next_uid = 1

    def _(self, text: str, **values: Any) -> str:
        """Translate ``text``; ``values`` fill its ``{name}`` placeholders after translation."""
        translated = self._gettext(text)
        return translated.format(**values) if values else translated

    def fbind(self, name: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        if name != "_":
            return super().fbind(name, func, *args, **kwargs)
        uid = self._next_uid
        self._next_uid += 1
        self._observers[uid] = (func, args)
        return uid

    def funbind(self, name: str, func: Any, *args: Any, **kwargs: Any) -> None:
        if name != "_":
            super().funbind(name, func, *args, **kwargs)
            return
        for uid, observer in list(self._observers.items()):
            if observer == (func, args):
                del self._observers[uid]

    def unbind_uid(self, name: str, uid: int) -> None:
        if name != "_":
            super().unbind_uid(name, uid)
            return
        self._observers.pop(uid, None)

    def switch(self, language: str) -> None:
        """Switch language and re-render every bound text."""
        self.language = check_language(language)
        self._gettext = translations(language).gettext
        for uid, (func, args) in list(self._observers.items()):
            try:
                # The kv builder bound call_fn(args, instance, value): it re-evaluates the rule.
                func(args[0], None, None)
            except ReferenceError:  # the widget of that rule is gone
                del self._observers[uid]


tr = Translator()
