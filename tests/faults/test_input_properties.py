"""Property tests (hypothesis) for input handling: validation, number keys, the mail parser, and
the list and create routes on a real Azurite, which must answer arbitrary input without a 500.
"""
from __future__ import annotations

import json
import string
import unicodedata
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from functions.lookalike import skeleton
from functions.mail.parse import parse_mail
from functions.model import (
    MAIL_COMMENT_MAX,
    NUMBER_MAX,
    STATUS_ACCEPTED,
    STATUS_CLARIFY,
    STATUS_DONE,
    STATUS_REJECTED,
    STATUSES,
    ValidationError,
    clean_typed_text,
    normalize_number,
    number_error,
    validate_new_request,
    validate_status_change,
)
from functions.storage.layout import lookup_key
from functions.storage.tables import KEY_CHARS, encode_cursor
from functions.web import signing

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ON_STORAGE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                             HealthCheck.too_slow])
PURE = settings(max_examples=400, deadline=None)

# A number's lookup row key: "n_" + a digest of the case-folded number (storage/layout.py).
LOOKUP_KEY_LENGTH = 2 + 32

# ----- strategies -------------------------------------------------------------------------------

SPECIAL = st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "\u200f", "\u200d", "\ufeff", "\U0001f600", "\u0301"])
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60) | st.builds(
    lambda a, special, b: a + special + b, st.text(max_size=20), SPECIAL, st.text(max_size=20))
NUMBER_CHARS = st.characters(categories=("L", "N")) | st.sampled_from(list("-_/.0123456789"))
SPACE = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u3000", "\r\n "])
VALID_NUMBER = st.text(NUMBER_CHARS, min_size=1, max_size=NUMBER_MAX).filter(lambda n: number_error(n) is None)
# Numbers as people type them: Latin and Cyrillic letters in either case, digits and signs.
CYRILLIC = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя"
TYPED_NUMBER = st.text(st.sampled_from(string.ascii_letters + CYRILLIC + string.digits + "-_/."), min_size=1,
                       max_size=NUMBER_MAX).filter(lambda n: number_error(n) is None)
# What a URL or a form can carry: any text but lone surrogates (they cannot be UTF-8 encoded at all).
SENDABLE_TEXT = st.text(max_size=60) | st.builds(lambda a, special, b: a + special + b, st.text(max_size=20),
                                                  SPECIAL.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF),
                                                  st.text(max_size=20))
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=12,
)
PLAIN_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=80)
FIELD_VALUE = JSON_VALUE | VALID_NUMBER | TYPED_NUMBER | st.sampled_from(["", " ", "AB-17", "x" * 33, "п" * 201])


# ----- pure: validation and number normalisation -------------------------------------------------

# Characters that may be dropped from typed text as invisible: controls, format characters (bidi,
# zero-width), unassigned ones, combining marks (variation selectors are marks) and the Hangul fillers.
MAY_VANISH_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Mn"})
HANGUL_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")


def assert_kept_as_typed(typed: str, kept: str) -> None:
    """Check accepted free text: trimmed, and as typed but for characters that do not show (which may go)."""
    assert kept == kept.strip() and len(kept) <= len(typed) and set(kept) <= set(typed)
    if not any(unicodedata.category(c) in MAY_VANISH_CATEGORIES or c in HANGUL_FILLERS for c in typed):
        assert kept == typed.strip()


@PURE
@given(number=JSON_VALUE | VALID_NUMBER, position=JSON_VALUE, description=JSON_VALUE)
def test_validation_raises_only_validation_error(number, position, description):
    try:
        got = validate_new_request(number, position, description)
    except ValidationError as exc:
        assert exc.fields and set(exc.fields) <= {"number", "position", "description"}
        assert all(isinstance(m, str) and m for m in exc.fields.values())
        return
    assert got[0] == number.strip()
    for typed, kept in zip(("" if position is None else position, "" if description is None else description),
                           got[1:], strict=True):
        assert_kept_as_typed(typed, kept)


# Visible text: no surrogates, no controls but LF and TAB, nothing that clean_typed_text removes.
VISIBLE_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc", "Cf"), include_characters="\n\t").filter(
    lambda c: clean_typed_text(c) == c), max_size=200)


@PURE
@given(number=VALID_NUMBER, before=SPACE, after=SPACE, position=VISIBLE_TEXT, description=VISIBLE_TEXT)
def test_accepted_values_come_back_trimmed_and_still_valid(number, before, after, position, description):
    typed = before + number + after
    got_number, got_position, got_description = validate_new_request(typed, position, description)
    assert got_number == typed.strip() == number.strip()
    assert got_position == position.strip() and got_description == description.strip()
    assert number_error(got_number) is None and validate_new_request(got_number, "", "")[0] == got_number


@PURE
@given(position=ANY_TEXT, comment=ANY_TEXT)
def test_accepted_free_text_holds_no_control_bidi_or_invisible_character(position, comment):
    for field, check in (("position", lambda: validate_new_request("A-1", position, "")[1]),
                         ("comment", lambda: validate_status_change(STATUS_DONE, comment)[1])):
        try:
            got = check()
        except ValidationError as exc:
            assert set(exc.fields) == {field}
            continue
        assert all(unicodedata.category(c) != "Cc" or c in "\n\t" for c in got)
        assert clean_typed_text(got) == got


@PURE
@given(status=JSON_VALUE | st.sampled_from(STATUSES), comment=JSON_VALUE)
def test_status_change_validation_raises_only_validation_error(status, comment):
    try:
        got_status, got_comment = validate_status_change(status, comment)
    except ValidationError as exc:
        assert set(exc.fields) <= {"status", "comment"}
        return
    assert got_status in STATUSES
    assert_kept_as_typed("" if comment is None else comment, got_comment)


@PURE
@given(text=ANY_TEXT)
def test_text_with_a_lone_surrogate_or_nul_is_never_accepted(text):
    bad = "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    for args in ((text, "", ""), ("A-1", text, ""), ("A-1", "", text)):
        try:
            validate_new_request(*args)
        except ValidationError:
            continue
        assert not bad
        json.dumps(list(args), ensure_ascii=False).encode("utf-8")  # anything accepted is real text


@PURE
@given(number=ANY_TEXT | VALID_NUMBER)
def test_normalize_number_is_idempotent(number):
    once = normalize_number(number)
    assert normalize_number(once) == once
    assert normalize_number(number.casefold()) == once


@PURE
@given(number=TYPED_NUMBER)
def test_typed_numbers_compare_without_letter_case(number):
    variants = {number.upper(), number.lower(), number.swapcase(), number.title(), f"  {number}\t"}
    assert {normalize_number(v) for v in variants} == {normalize_number(number)}
    assert {lookup_key(v) for v in variants} == {lookup_key(number)}


def _assert_safe_key(key: str) -> None:
    # Keys stay within [A-Za-z0-9_-], which every Table Storage implementation takes in point operations.
    assert KEY_CHARS.issuperset(key) and len(key) == LOOKUP_KEY_LENGTH, key


@PURE
@given(a=VALID_NUMBER | TYPED_NUMBER, b=VALID_NUMBER | TYPED_NUMBER)
def test_lookup_key_is_plain_and_tells_numbers_apart_exactly_when_they_differ_beyond_case(a, b):
    ka, kb = lookup_key(a), lookup_key(b)
    _assert_safe_key(ka)
    _assert_safe_key(kb)
    assert (ka == kb) == (normalize_number(a) == normalize_number(b))


def test_lookup_key_of_the_widest_valid_numbers_is_as_plain_and_short_as_any():
    # Four UTF-8 bytes a character, or one character folding into three: what once made keys grow.
    for number in ("\U0001d400" * NUMBER_MAX, "\u0390" * (NUMBER_MAX // 3), "\u00df" * (NUMBER_MAX // 2),
                   "\U0001044f" * NUMBER_MAX, "\U00010400" * NUMBER_MAX, "ТО-2026/77", "a/b", "A.B"):
        assert number_error(number) is None, number
        _assert_safe_key(lookup_key(number))
    for number in ("\u0390" * (NUMBER_MAX // 3 + 1), "\u00df" * (NUMBER_MAX // 2 + 1)):
        assert number_error(number) is not None


@PURE
@given(number=st.text(st.characters(categories=("L", "N", "M", "P", "S", "Z", "C")), min_size=1, max_size=40))
def test_valid_numbers_hold_only_letters_digits_and_the_four_signs(number):
    if number_error(number) is None:
        for char in number.strip():
            assert char in "-_/." or unicodedata.category(char)[0] in "LN", repr(char)


# ----- the mail parser on mail-shaped text ------------------------------------------------------

MAIL_NUMBER = st.from_regex(r"\A(?:[A-Z]{1,2}-|[А-Я]{1,2}-)?[1-9][0-9]{0,5}(?:/[0-9]{1,3})?\Z")
QUOTED_NUMBER = st.from_regex(r"\A9999999[0-9]{0,3}\Z")  # never one of MAIL_NUMBER (≤ 6 digits in a row)
MARKERS = st.sampled_from(["Заявка №", "заявка № ", "По заявке №", "заявке ", "Заявку #", "№", "# ", "заявка номер ",
                           "Заявки №"])
PHRASES = {  # phrase -> the status it states (None: says nothing, or is negated)
    "принята в работу": STATUS_ACCEPTED, "взяли в работу": STATUS_ACCEPTED, "приступили к работам": STATUS_ACCEPTED,
    "просим уточнить адрес": STATUS_CLARIFY, "требуется уточнение": STATUS_CLARIFY,
    "выполнена": STATUS_DONE, "работы завершены": STATUS_DONE, "неисправность устранена": STATUS_DONE,
    "отклонена": STATUS_REJECTED, "не можем выполнить": STATUS_REJECTED,
    "ещё не выполнена": None, "работы не завершены": None, "на контроле": None, "": None,
}
PHRASE = st.sampled_from(sorted(PHRASES))
CUTS = st.sampled_from(["-----Original Message-----", "-----Исходное сообщение-----", "Иван Петров пишет:",
                        "On Mon, 1 Jan 2026, ivan@example.org wrote:", "From: Иван\nSent: 1 января\nTo: OMIS",
                        "От: Иван\nОтправлено: 1 января\nКому: OMIS"])
SIGNATURES = st.sampled_from(["-- \nИван, инженер", "С уважением,\nИван", "С уважением, Иван"])
NOISE = st.lists(st.sampled_from([*"абвгд ежз ,.!?\n", "позиция 7", "поз. 3", "№", "заявка", "ё"]),
                 max_size=20).map("".join)


@st.composite
def structured_mail(draw):
    """A reply: sentences naming numbers and statuses, then maybe a signature and quoted history."""
    numbers = draw(st.lists(MAIL_NUMBER, min_size=1, max_size=5, unique_by=normalize_number))
    sentences, expected = [], {}
    for number in numbers:
        phrase = draw(PHRASE)
        sentences.append(f"{draw(MARKERS)}{number} {phrase}{draw(st.sampled_from(['.', '!', ';']))}")
        expected[normalize_number(number)] = PHRASES[phrase]
    body = draw(st.sampled_from(["Добрый день!\n", "", "Здравствуйте.\n"])) + "\n".join(sentences)
    quoted = draw(st.lists(QUOTED_NUMBER, max_size=3))
    if draw(st.booleans()):
        body += "\n\n" + draw(SIGNATURES) + "\n" + " ".join(f"заявка № {q} отклонена." for q in quoted)
    history = [f"Заявка № {q} отклонена. Заявка № {n} выполнена." for q in quoted for n in numbers[:1]]
    if history or draw(st.booleans()):
        if draw(st.booleans()):
            body += "\n\n" + "\n".join("> " + line for line in history or ["> старое"])
        else:
            body += "\n\n" + draw(CUTS) + "\n" + "\n".join(history) + draw(NOISE)
    return body, numbers, expected, quoted


@settings(max_examples=300, deadline=None)
@given(mail=structured_mail(), subject=st.sampled_from(["", "Re: ответ", "RE: FW: письмо подрядчика"]))
# Found by this test: the letters of a number were read as the words around the status phrase.
@example(mail=("Заявка №БЫ-1 взяли в работу.", ["БЫ-1"], {"бы-1": STATUS_ACCEPTED}, []), subject="")
@example(mail=("Заявка № НЕ-5 выполнена.\nЗаявка №7 не выполнена.", ["НЕ-5", "7"],
               {"не-5": STATUS_DONE, "7": None}, []), subject="")
def test_parser_reads_numbers_and_statuses_of_the_new_part_only(mail, subject):
    body, _numbers, expected, quoted = mail
    parsed = parse_mail(subject, body)
    found = {normalize_number(n) for n in parsed.numbers}
    assert found == set(expected), body  # every marked number, nothing from history or signature
    assert not found & {normalize_number(q) for q in quoted}
    for key, status in expected.items():
        assert parsed.statuses[key] == status, (body, key)
    assert all(number_error(n) is None for n in parsed.numbers)
    assert len(parsed.comment) <= MAIL_COMMENT_MAX


MAIL_PIECES = st.sampled_from([
    "заявка", "Заявке №", "№", "#", "№№", "N", "номер", "позиция", "поз.", "не", "ещё не", "будет", "выполнена",
    "принята в работу", "отклонена", "отказ", "уточните", "в работе", "С уважением", "-- ", ">", "пишет:", "wrote:",
    "-----Original Message-----", "От:", "From:", "Тема:", "101", "AB-17", "ТО-2026/77", "ΐΐΐ", "ß" * 20, "x" * 40,
    "..", "./", "1/..", "\u202e", "\u200d", "😀", "\x00", "\ufeff", "И\u0306", ",", ".", "!", "?", ";", "\n", "\r\n",
    " ", "\t", "и", "а также", "«", "»", '"', "(", ")",
])


@settings(max_examples=300, deadline=None)
@given(subject=st.lists(MAIL_PIECES | st.text(max_size=4), max_size=20).map(" ".join),
       body=st.lists(MAIL_PIECES | MAIL_NUMBER | st.text(max_size=4), max_size=80).map(" ".join),
       unique=st.none() | st.lists(MAIL_PIECES, max_size=20).map("".join))
def test_parser_never_raises_on_mail_shaped_noise(subject, body, unique):
    parsed = parse_mail(subject, body, unique)
    keys = [normalize_number(n) for n in parsed.numbers]
    assert len(keys) == len(set(keys)) and set(parsed.statuses) == set(keys)
    assert all(number_error(n) is None for n in parsed.numbers)  # only numbers that could be stored
    assert all(s is None or s in STATUSES for s in [*parsed.statuses.values(), parsed.general_status])
    assert len(parsed.comment) <= MAIL_COMMENT_MAX


# ----- routes on Azurite: never a 500 ------------------------------------------------------------

QUERY_VALUE = SENDABLE_TEXT | st.sampled_from(
    ["", "0", "1", "100", "101", "-1", "1e3", "²", "٣", "9" * 30, *STATUSES, "выполнена ", "u_", "%", "%%", "%zz"])
CURSOR_VALUE = QUERY_VALUE | st.text(string.ascii_letters + string.digits + "-_=", max_size=40) | st.builds(
    encode_cursor, st.sampled_from(["u_", "s_0_", "s_9_", "h_", "d_", "c_counts", ""]).flatmap(
        lambda prefix: st.text(st.characters(exclude_categories=("Cs",)), max_size=30).map(lambda t: prefix + t)
    ).filter(bool))
RAW_QUERY = st.lists(st.sampled_from(list("&=%+;?#/ ") + list("0123456789abcdefABCDEF")
                                    + ["status", "q", "limit", "cursor", "%D0", "%FF", "%00"]),
                     max_size=30).map("".join)

LIST_PATHS = ["/", "/requests", "/api/requests", "/mail/unmatched", "/api/mail/unmatched"]


def _seed(store) -> None:
    for i in range(3):
        store.add_request(f"P-{i}", f"Позиция {i}")
    store.update_status("P-0", "выполнена", "готово")
    store.edit_request("P-2", new_number="P-20")   # an old number is an alias: a path may name it too


def _mostly(usual: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """Draw from `usual` two times in three, else from `odd`."""
    return st.integers(0, 2).flatmap(lambda pick: usual if pick else odd)


@ON_STORAGE
@given(status=_mostly(st.none() | st.sampled_from(STATUSES), QUERY_VALUE),
       q=_mostly(st.none() | st.sampled_from(["p-1", "позиция", "P"]), QUERY_VALUE),
       limit=_mostly(st.none() | st.integers(1, 100).map(str), QUERY_VALUE),
       cursor=_mostly(st.none(), CURSOR_VALUE), path=st.sampled_from(LIST_PATHS))
def test_lists_never_fail_on_arbitrary_parameters(call, store, status, q, limit, cursor, path):
    if not store.get_request("P-0"):
        _seed(store)
    params = {k: v for k, v in (("status", status), ("q", q), ("limit", limit), ("cursor", cursor)) if v is not None}
    resp = call("GET", path + "?" + urlencode(params))
    event(f"answered {resp.status_code}")
    assert resp.status_code in (200, 400), (path, params, resp.get_body()[:300])
    if path.startswith("/api/"):
        data = json.loads(resp.get_body())
        assert ("items" in data) if resp.status_code == 200 else data["error"]


@ON_STORAGE
@given(raw=RAW_QUERY, path=st.sampled_from(LIST_PATHS))
def test_lists_never_fail_on_broken_query_strings(call, store, raw, path):
    resp = call("GET", path + "?" + raw)
    assert resp.status_code in (200, 400), (path, raw)


FREE_TEXT = st.none() | st.text(max_size=80) | ANY_TEXT | FIELD_VALUE


@st.composite
def create_payload(draw):
    if draw(st.integers(0, 2)):  # mostly well-formed, so that creations and duplicates happen too
        payload = {"number": draw(VALID_NUMBER | TYPED_NUMBER), "position": draw(PLAIN_TEXT)}
        if draw(st.booleans()):
            payload["description"] = draw(PLAIN_TEXT)
        return payload
    payload = draw(st.fixed_dictionaries({}, optional={"number": VALID_NUMBER | TYPED_NUMBER | FIELD_VALUE,
                                                       "position": FREE_TEXT, "description": FREE_TEXT}))
    if draw(st.integers(0, 3)) == 0:
        payload.update(draw(st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=2)))
    return payload


@ON_STORAGE
@given(payload=create_payload() | JSON_VALUE)
def test_creating_from_arbitrary_json_never_fails_and_stores_only_what_it_accepts(call, store, payload):
    numbers = [r.number for r in store.list_requests(limit=100).items]
    before = {normalize_number(n) for n in numbers}
    resp = call("POST", "/api/requests", json.dumps(payload), JSON)
    event(f"answered {resp.status_code}")
    assert resp.status_code in (201, 400, 409), (payload, resp.get_body()[:300])
    after = {normalize_number(r.number) for r in store.list_requests(limit=100).items}
    if resp.status_code == 201:
        created = json.loads(resp.get_body())
        assert created["number"] == payload["number"].strip()  # stored as typed, trimmed
        assert store.get_request(payload["number"]).number == created["number"]
        assert after == before | {normalize_number(created["number"])}
    else:
        assert after == before
        if resp.status_code == 409:   # the same number in another letter case, or one drawn alike
            number = payload["number"]
            assert normalize_number(number) in before or skeleton(number) in {skeleton(n) for n in numbers}
            event("409 " + ("duplicate" if normalize_number(number) in before else "look-alike"))


@ON_STORAGE
@given(payload=_mostly(st.fixed_dictionaries({}, optional={"status": _mostly(st.sampled_from(STATUSES), JSON_VALUE),
                                                           "comment": _mostly(PLAIN_TEXT, JSON_VALUE)}),
                       st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=3) | JSON_VALUE),
       number=_mostly(st.sampled_from(["P-1", "p-1", " P-1", "P-2", "NOPE"]), VALID_NUMBER))
def test_status_change_from_arbitrary_json_never_fails(call, store, payload, number):
    if not store.get_request("P-0"):
        _seed(store)
    before = store.get_request("P-1")
    resp = call("POST", "/api/requests/" + quote(number, safe="") + "/status", json.dumps(payload), JSON)
    event(f"answered {resp.status_code}")
    assert resp.status_code in (200, 400, 404), (payload, resp.get_body()[:300])
    if resp.status_code != 200:
        assert store.get_request("P-1").history == before.history


@ON_STORAGE
@given(number=_mostly(VALID_NUMBER | TYPED_NUMBER, st.none() | SENDABLE_TEXT),
       fields=st.lists(st.tuples(st.sampled_from(["number", "position", "description", "csrf_token"]) | SENDABLE_TEXT,
                                 SENDABLE_TEXT | st.sampled_from(["п" * 201, "д" * 4001])), max_size=5),
       with_token=_mostly(st.just(True), st.just(False)))
def test_the_new_request_form_never_fails_on_arbitrary_fields(call, store, omis_env, number, fields, with_token):
    if number is not None:
        fields = [("number", number), *fields]
    if with_token:
        fields = [("csrf_token", signing.make_csrf_token(omis_env["OMIS_SECRET_KEY"], "Инженер")), *fields]
    raw = urlencode(fields)
    count = len(store.list_requests(limit=100).items)
    resp = call("POST", "/add_request", raw, FORM)
    event(f"answered {resp.status_code}")
    assert resp.status_code in (303, 400, 403, 409, 413), (fields, resp.get_body()[:300])
    assert len(store.list_requests(limit=100).items) == count + (resp.status_code == 303)
