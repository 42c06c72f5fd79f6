"""CJK font discovery and face extraction; gettext catalogues complete in every language."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tvapp.fonts import FontFileError, extract_face, find_cjk_face, usable_font_file
from tvapp.i18n import LANGUAGES, translations
from tvapp.i18n_extract import messages


def test_a_cjk_font_is_found_through_fontconfig() -> None:
    face = find_cjk_face("zh_CN")
    assert Path(face.path).exists() and ("CJK" in face.family or "WenQuanYi" in face.family)


def test_a_later_face_of_a_collection_is_extracted_to_a_usable_file(tmp_path: Path) -> None:
    face = find_cjk_face("zh_CN")
    data = Path(face.path).read_bytes()
    if data[:4] != b"ttcf":
        pytest.fail(f"{face.path} is not a collection; this test needs fonts-wqy-microhei")
    out = tmp_path / "face1.otf"
    out.write_bytes(extract_face(data, 1))
    family = subprocess.run(
        ["fc-scan", "-f", "%{family}", str(out)], capture_output=True, text=True, check=True
    ).stdout
    second = subprocess.run(
        ["fc-scan", "-f", "%{family}\\n", face.path], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1]
    assert family == second  # the second face, not the first


def test_face_zero_is_used_in_place(tmp_path: Path) -> None:
    face = find_cjk_face("zh_CN")
    assert usable_font_file(face, tmp_path) == face.path if face.index == 0 else True


def test_truncated_collections_are_refused() -> None:
    with pytest.raises(FontFileError):
        extract_face(b"ttcf\x00\x01\x00\x00\x00\x00\x00\x02", 1)


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW"])
def test_every_message_is_translated(language: str) -> None:
    catalogue = translations(language)
    missing = sorted(m for m in messages() if catalogue.gettext(m) == m and m != "TV")
    assert missing == []


def test_english_falls_back_to_the_message_ids_and_languages_name_themselves() -> None:
    assert translations("en").gettext("Payment successful") == "Payment successful"
    assert LANGUAGES == {"zh_CN": "简体中文", "zh_TW": "繁體中文", "en": "English"}
