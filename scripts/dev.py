"""Start OMIS locally: Azurite (data kept in .azurite/), the tables, then the local host on :7071.

Usage: python scripts/dev.py [serve options, e.g. --port 7072]
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.azurite import connection_string, port_open, start_azurite, stop_azurite
from scripts.setup import ROOT, ensure_all, say

AZURITE_PORT = 10002


def main() -> int:
    python = ensure_all()
    settings = ROOT / "local.settings.json"
    if not settings.exists():
        shutil.copyfile(ROOT / "local.settings.example.json", settings)
        say("создан local.settings.json из local.settings.example.json")
    env = dict(os.environ)
    azurite = None
    if port_open(AZURITE_PORT):
        say(f"Azurite уже отвечает на порту {AZURITE_PORT}: использую его")
    else:
        say(f"запускаю Azurite на 127.0.0.1:{AZURITE_PORT} (данные в .azurite/, журнал в .azurite/azurite.log)")
        azurite = start_azurite(AZURITE_PORT, location=ROOT / ".azurite", log=ROOT / ".azurite" / "azurite.log")
    env.setdefault("OMIS_TABLES_CONNECTION_STRING", connection_string(AZURITE_PORT))
    try:
        subprocess.run([str(python), "-m", "functions", "init"], cwd=ROOT, env=env, check=True)
        port = sys.argv[sys.argv.index("--port") + 1] if "--port" in sys.argv[1:-1] else "7071"
        say(f"OMIS: http://localhost:{port} (остановка: Ctrl-C)")
        return subprocess.run([str(python), "-m", "functions", "serve", *sys.argv[1:]], cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    finally:
        if azurite is not None:
            say("останавливаю Azurite (данные сохранены)")
            stop_azurite(azurite)


if __name__ == "__main__":
    sys.exit(main())
