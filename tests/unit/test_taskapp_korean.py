"""Korean particles chosen by the word they follow (taskapp.korean): no "을(를)" or "(으)로" on a page."""

from __future__ import annotations

import pytest

from taskapp.korean import in_locale, particle, with_particle


@pytest.mark.parametrize(("word", "which", "expected"), [
    ("진행 중", "로", "진행 중으로"),  # 중: a final ㅇ
    ("완료", "로", "완료로"),  # no final consonant
    ("할 일", "로", "할 일로"),  # ㄹ takes 로
    ("할 일", "으로", "할 일로"),  # either form asked, the right one given
    ("보고서", "을", "보고서를"),
    ("회의록", "를", "회의록을"),
    ("“예산안 검토”", "을", "“예산안 검토”를"),  # closing quotes are skipped
    ("업무 3", "을", "업무 3을"),  # 삼
    ("업무 2", "로", "업무 2로"),  # 이
    ("업무 7", "로", "업무 7로"),  # 칠: ㄹ
    ("PDF", "을", "PDF를"),  # 에프
    ("Excel", "로", "Excel로"),  # 엘: ㄹ
    ("사과", "이", "사과가"), ("책", "가", "책이"),
    ("나", "은", "나는"), ("밥", "는", "밥은"),
    ("친구", "과", "친구와"), ("동생", "와", "동생과"),
    ("", "을", "를"),
])
def test_the_particle_follows_the_last_sound(word, which, expected):
    assert with_particle(word, which) == expected
    assert particle(word, which) == expected[len(word):]


def test_only_a_korean_page_adds_the_particle():
    assert in_locale("진행 중", "로", "ko") == "진행 중으로"
    assert in_locale("In progress", "로", "en") == "In progress"


def test_no_korean_message_leaves_the_particle_to_the_reader():
    from babel.messages.pofile import read_po

    from shared.platform.settings import ROOT

    with open(ROOT / "shared/platform/translations/ko/LC_MESSAGES/messages.po", "rb") as po:
        catalog = read_po(po)
    taskapp_messages = [m for m in catalog if m.id and any("taskapp" in path for path, _line in m.locations)]
    assert len(taskapp_messages) > 100
    awkward = [m.string for m in taskapp_messages if any(mark in m.string for mark in ("(으)로", "을(를)", "이(가)"))]
    assert awkward == []
