"""Composition root: the Function App and its blueprints."""
import azure.functions as func

from functions.api import bp as api_blueprint
from functions.logsafe import install_log_escaping
from functions.timers import bp as timers_blueprint
from functions.web import bp as web_blueprint

# Before any record is made: values logged by OMIS stay on their line (functions/logsafe.py).
install_log_escaping()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(api_blueprint)
app.register_functions(web_blueprint)
app.register_functions(timers_blueprint)
