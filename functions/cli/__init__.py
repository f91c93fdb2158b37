"""`python -m functions COMMAND` (SPEC §6).

Layers, imports pointing down only: main.py (the dispatcher) imports the command modules
(functions/mail/commands.py, functions/alerts/commands.py); they import errors.py and
options.py, which import nothing of OMIS. This file stays empty of imports: importing
`functions.cli.errors` runs it first, so anything imported here would be imported by every
command module too.
"""
