"""Composition root: the Function App and its blueprints."""
import azure.functions as func

from functions.alerts.webhook import bp as telegram_blueprint
from functions.logsafe import install_log_escaping
from functions.timers import bp as timers_blueprint
from functions.web.api import bp as api_blueprint
from functions.web.mailpages import bp as mail_pages_blueprint
from functions.web.pages import bp as pages_blueprint
from functions.web.reportpages import bp as report_pages_blueprint
from functions.web.static import bp as static_blueprint

# Before any record is made: values logged by OMIS stay on their line (functions/logsafe.py).
install_log_escaping()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(api_blueprint)
app.register_functions(pages_blueprint)
app.register_functions(mail_pages_blueprint)
app.register_functions(report_pages_blueprint)
app.register_functions(static_blueprint)
app.register_functions(timers_blueprint)
app.register_functions(telegram_blueprint)
