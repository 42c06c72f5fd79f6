"""Lists the message ids the app uses, for the catalogue check and for translators.

Message ids appear as ``tr._("...")`` in kv files and as values of the label tables
(tvapp/ui/labels.py, legends, controller messages). Run ``python -m tvapp.i18n_extract``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent
_KV_CALL = re.compile(r'tr\._\(\s*"((?:[^"\\]|\\.)*)"')
_KV_DICT_VALUES = re.compile(r"tr\._\(\{([^}]*)\}")
# Module-level message ids: the fallback texts and phrase templates of tvapp/ui.
_MESSAGE_CONSTANTS = frozenset(
    ("BIND_FALLBACK", "UNKNOWN_REFUND_REASON", "UTILITY_REF", "WALLET_BALANCE")
)


def _kv_messages(text: str) -> set[str]:
    found = set(_KV_CALL.findall(text))
    for body in _KV_DICT_VALUES.findall(text):
        found.update(re.findall(r':\s*"((?:[^"\\]|\\.)*)"', body))
    return found


def _python_messages(path: Path) -> set[str]:
    """Strings in the label tables and screen legends (module-level dicts and self.legend)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "StateText":
            found.update(a.value for a in node.args if isinstance(a, ast.Constant))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "StatusWord":
            found.add(node.args[0].value)  # the word; the tone is not shown
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
            targets = [
                ast.unparse(t) for t in getattr(node, "targets", [getattr(node, "target", None)])
            ]
            if any(
                t
                in (
                    "UTILITIES",
                    "BIND_MESSAGES",
                    "CONFIRM_LABELS",
                    "PURCHASE_LABELS",
                    "REFUND_REASONS",
                    "CREDITING_ANSWERS",
                    "PREPARE_REFUSALS",
                    "self.legend",
                )
                for t in targets
            ):
                found.update(
                    v.value
                    for v in node.value.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) in _MESSAGE_CONSTANTS:
            found.add(node.value.value)
        if (
            isinstance(node, ast.Assign)
            and ast.unparse(node.targets[0]).endswith("bind_result")
            and isinstance(node.value, ast.Constant)
            and node.value.value
        ):
            found.add(node.value.value)
    return found


def messages() -> set[str]:
    found: set[str] = set()
    for kv in (ROOT / "ui" / "kv").glob("*.kv"):
        found |= _kv_messages(kv.read_text(encoding="utf-8"))
    for py in (ROOT / "ui").rglob("*.py"):
        found |= _python_messages(py)
    return found


if __name__ == "__main__":
    for message in sorted(messages()):
        print(message)
