"""Write a store with the version-1 code (main before immutable ids) and dump every row to JSON.

Not run by the tests: it needs the code of that version. It made tests/data/store-v1.json:

    git worktree add /tmp/v1 97b1528 && cp tests/data/make_v1_store.py /tmp/v1/
    (cd /tmp/v1 && ln -s "$OLDPWD/node_modules" && "$OLDPWD/.venv/bin/python" make_v1_store.py) > tests/data/store-v1.json
"""
import base64
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scripts.azurite import connection_string, free_port, start_azurite, stop_azurite

port = free_port()
proc = start_azurite(port)
try:
    os.environ.update({"OMIS_TABLES_CONNECTION_STRING": connection_string(port), "OMIS_TABLE_PREFIX": "v1",
                       "OMIS_SECRET_KEY": "k", "OMIS_TIMEZONE": "Europe/Moscow"})
    from functions import mailstore, store
    from functions.mail import sync
    from functions.mail.message import GraphMessage
    from functions.tables import MAIL_TABLE, REQUESTS_TABLE, table

    store.init_db()
    t0 = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)
    for i, (number, position) in enumerate([("10501", "поз. 7"), ("ТО-2026/77", "Котельная №3"), ("HP", ""),
                                             ("HP_X", "узел HP_X"), ("AB.17", "")]):
        store.add_request(number, position, f"Описание {number}", author="Анна", now=t0 + timedelta(minutes=i))
    store.update_status("HP_X", "принята в работу", "взяли HP_X", author="Пётр", now=t0 + timedelta(minutes=30))
    store.update_status("AB.17", "выполнена", "готово", author="Пётр", source="api", now=t0 + timedelta(minutes=40))

    def message(n, subject, body, minutes, conversation, sender="petrov@contractor.example"):
        return GraphMessage(graph_id=f"AAMk-{n}=", internet_message_id=f"<v1-{n}@contractor.example>",
                            conversation_id=conversation, subject=subject, body=body, unique_body=None,
                            sender_name="Иван Петров", sender_address=sender, received=t0 + timedelta(minutes=minutes))

    report = sync.apply_messages([
        message(1, "RE: Заявка №10501", "Заявка №10501, позиция 7: принята в работу.", 50, "CONV-10501"),
        message(2, "RE: Заявка ТО-2026/77", "Заявка № ТО-2026/77 отклонена: не по договору.", 55, "CONV-77"),
        message(3, "RE: Выезд", "Работы завершены.", 60, "CONV-10501"),
        message(4, "Заявка №99901", "Заявка №99901 принята в работу.", 65, "CONV-X"),
        message(5, "Вопрос", "Когда оплата?", 70, None),
        message(6, "RE: HP", "Заявка HP принята в работу.", 75, "CONV-HP"),
    ])
    print(report.log_line(), file=sys.stderr)
    mailstore.set_state("graph-resume:" + "0" * 32, "https://graph.microsoft.com/v1.0/users/x/mailFolders/y/messages/delta?$deltatoken=abc")
    delayed = store.get_delayed_requests(minutes=60, now=t0 + timedelta(hours=3))
    store.claim_reminders(delayed[:1], t0 + timedelta(hours=3))

    def encode(value):
        if isinstance(value, datetime):
            return {"$dt": value.astimezone(timezone.utc).isoformat()}
        if isinstance(value, bytes):
            return {"$bytes": base64.b64encode(value).decode()}
        return value

    dump = {}
    for suffix in (REQUESTS_TABLE, MAIL_TABLE):
        rows = [{k: encode(v) for k, v in e.items()} for e in table(suffix).list_entities()]
        dump[suffix] = sorted(rows, key=lambda r: (r["PartitionKey"], r["RowKey"]))
    json.dump({"about": "Every row of a store written by OMIS before immutable ids (schema version 1, "
                        "commit 97b1528), made by tests/data/make_v1_store.py run against that commit.",
               "tables": dump}, sys.stdout, ensure_ascii=False, indent=1)
finally:
    stop_azurite(proc)
