"""Static checks of the deployment files: infra/*.bicep, main.parameters.json, azure.yaml, host.json.

The Bicep checks are syntax-level only: tree-sitter-bicep parses each file, and the
tests read names out of the syntax tree. Nothing here runs the Bicep compiler, checks
resource types or API versions against Azure's schemas, or deploys anything; a
template that passes can still be rejected by `bicep build` or by Azure.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_bicep

from functions.settings import SETTING_NAMES, load_settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN_BICEP = INFRA / "main.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# App settings Flex Consumption replaces with functionAppConfig or does without;
# AzureWebJobsStorage would be a key-based connection string.
FORBIDDEN_APP_SETTINGS = {
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "AzureWebJobsStorage",
}


# ---- Reading Bicep through tree-sitter --------------------------------------------

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


@cache
def parse(path: Path) -> tree_sitter.Tree:
    return _PARSER.parse(path.read_bytes())


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8")


def string_literal(node: tree_sitter.Node | None) -> str | None:
    """Return the value of a plain string literal, or None for anything else."""
    if node is None or node.type != "string":
        return None
    if any(child.type == "interpolation" for child in node.children):
        return None
    escapes = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}
    return "".join(
        text(child) if child.type == "string_content" else escapes.get(text(child), text(child))
        for child in node.children
        if child.type in ("string_content", "escape_sequence")
    )


def property_key(prop: tree_sitter.Node) -> str | None:
    key = prop.named_children[0] if prop.named_children else None
    if key is None:
        return None
    if key.type == "identifier":
        return text(key)
    return string_literal(key)


def property_value(prop: tree_sitter.Node) -> tree_sitter.Node:
    return prop.named_children[-1]


def object_properties(obj: tree_sitter.Node) -> dict[str, tree_sitter.Node]:
    return {property_key(p): property_value(p) for p in obj.named_children if p.type == "object_property"}


def referenced_names(node: tree_sitter.Node) -> set[str]:
    """Names a value expression reads: identifiers that are neither object keys nor called functions."""
    names = set()
    for n in walk(node):
        if n.type != "identifier":
            continue
        parent = n.parent
        if parent is not None and parent.type == "object_property" and parent.named_children[0] == n:
            continue
        if parent is not None and parent.type == "call_expression" and parent.named_children[0] == n:
            continue
        names.add(text(n))
    return names


def declaration_body(decl: tree_sitter.Node) -> tree_sitter.Node | None:
    """The object literal of a resource or module, also inside `if (...)` and `[for ...]`."""
    for child in decl.named_children:
        if child.type == "object":
            return child
        if child.type in ("if_statement", "for_statement"):
            return declaration_body(child)
    return None


@dataclass
class Param:
    name: str
    secure: bool
    default: tree_sitter.Node | None


@dataclass
class BicepFile:
    path: Path
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, tree_sitter.Node] = field(default_factory=dict)
    outputs: dict[str, tree_sitter.Node] = field(default_factory=dict)
    resources: list[tuple[str, tree_sitter.Node]] = field(default_factory=list)
    modules: list[tuple[str, tree_sitter.Node]] = field(default_factory=list)


def _value_after_equals(decl: tree_sitter.Node) -> tree_sitter.Node | None:
    seen_equals = False
    for child in decl.children:
        if seen_equals and child.is_named:
            return child
        if child.type == "=":
            seen_equals = True
    return None


@cache
def bicep(path: Path) -> BicepFile:
    """Read the top-level declarations of a Bicep file."""
    result = BicepFile(path)
    decorators: list[str] = []
    for node in parse(path).root_node.named_children:
        if node.type == "decorators":
            decorators = [text(d) for d in node.named_children]
            continue
        name_node = next((c for c in node.named_children if c.type == "identifier"), None)
        name = text(name_node) if name_node is not None else ""
        if node.type == "parameter_declaration":
            secure = any(d.replace(" ", "").startswith("@secure(") for d in decorators)
            result.params[name] = Param(name, secure, _value_after_equals(node))
        elif node.type == "variable_declaration":
            result.variables[name] = _value_after_equals(node)
        elif node.type == "output_declaration":
            result.outputs[name] = _value_after_equals(node)
        elif node.type == "resource_declaration":
            result.resources.append((string_literal(node.named_children[1]) or "", node))
        elif node.type == "module_declaration":
            result.modules.append((string_literal(node.named_children[1]) or "", node))
        decorators = []
    return result


def nested_resources(path: Path) -> Iterator[tuple[str, tree_sitter.Node]]:
    """Every resource declaration in a file, nested ones included, with its type string."""
    for node in walk(parse(path).root_node):
        if node.type == "resource_declaration":
            yield string_literal(node.named_children[1]) or "", node


def bicep_object_keys(prefix: str) -> dict[str, list[str]]:
    """Keys of object literals starting with prefix, with the files they appear in."""
    found: dict[str, list[str]] = {}
    for path in BICEP_FILES:
        for node in walk(parse(path).root_node):
            if node.type == "object_property":
                key = property_key(node)
                if key and key.startswith(prefix):
                    found.setdefault(key, []).append(path.relative_to(ROOT).as_posix())
    return found


def omis_names(names) -> set[str]:
    return {n for n in names if n.startswith("OMIS_")}


def describe_difference(sets: dict[str, set[str]]) -> str:
    everything = set().union(*sets.values())
    lines = []
    for name in sorted(everything):
        missing = [source for source, values in sets.items() if name not in values]
        if missing:
            lines.append(f"{name}: missing from {', '.join(missing)}")
    return "\n".join(lines)


# ---- Bicep syntax ------------------------------------------------------------------


def test_infra_has_main_and_modules():
    assert MAIN_BICEP.exists()
    assert len(BICEP_FILES) > 1, "expected modules under infra/modules"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses_without_error_or_missing_nodes(path: Path):
    tree = parse(path)
    problems = [
        f"{path.name}:{n.start_point[0] + 1}:{n.start_point[1] + 1}: "
        f"{'missing ' + n.type if n.is_missing else 'cannot parse ' + text(n)[:60]!r}"
        for n in walk(tree.root_node)
        if n.is_error or n.is_missing
    ]
    assert not problems, "\n".join(problems)


def test_syntax_check_catches_a_broken_file(tmp_path: Path):
    broken = tmp_path / "broken.bicep"
    broken.write_text("param name string =\nresource x 'A/b@2020-01-01' = {\n  name: 'x'\n")
    assert parse(broken).root_node.has_error


# ---- Settings: code, Bicep and local settings name the same set ------------------


def test_omis_settings_are_the_same_in_code_bicep_and_local_settings():
    local = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))
    sets = {
        "functions/settings.py SETTING_NAMES": omis_names(SETTING_NAMES),
        "infra/*.bicep app settings": omis_names(bicep_object_keys("OMIS_")),
        "local.settings.example.json Values": omis_names(local["Values"]),
    }
    differences = describe_difference(sets)
    if differences:
        pytest.fail("OMIS_* settings differ:\n" + differences)


def test_omis_parameters_of_main_bicep_are_settings():
    unknown = omis_names(bicep(MAIN_BICEP).params) - set(SETTING_NAMES)
    assert not unknown, f"main.bicep has OMIS_* parameters that settings.py does not read: {sorted(unknown)}"


def test_omis_parameter_defaults_mean_the_same_as_an_unset_setting():
    """A Bicep default, fed to load_settings, gives what the code does with the setting unset (SPEC §7)."""
    def comparable(env: dict[str, str]) -> dict:
        values = dataclasses.asdict(load_settings(env))
        values.pop("secret_key")
        values.pop("secret_key_is_random")
        return values

    unset = comparable({})
    checked = []
    for name, param in bicep(MAIN_BICEP).params.items():
        default = string_literal(param.default)
        if not name.startswith("OMIS_") or default is None:
            continue
        assert comparable({name: default}) == unset, f"{name}: default {default!r} is not the SPEC §7 default"
        checked.append(name)
    assert len(checked) >= 20, checked


def test_timer_schedules_default_to_every_ten_minutes():
    params = bicep(MAIN_BICEP).params
    for name in ("OMIS_MAIL_SCHEDULE", "OMIS_ALERT_SCHEDULE"):
        assert string_literal(params[name].default) == "0 */10 * * * *"


def test_flex_consumption_app_settings_leave_out_deprecated_and_key_based_settings():
    used = set()
    for path in BICEP_FILES:
        for node in walk(parse(path).root_node):
            if node.type == "object_property":
                used.add(property_key(node))
    found = used & FORBIDDEN_APP_SETTINGS
    assert not found, f"not for a Flex Consumption app without storage keys: {sorted(found)}"


def test_function_app_runs_python_311_on_flex_consumption():
    path = INFRA / "modules" / "functionapp.bicep"
    sites = [node for kind, node in nested_resources(path) if kind.startswith("Microsoft.Web/sites@")]
    assert len(sites) == 1
    config = object_properties(object_properties(declaration_body(sites[0]))["properties"])["functionAppConfig"]
    runtime = object_properties(object_properties(config)["runtime"])
    assert string_literal(runtime["name"]) == "python"
    assert string_literal(runtime["version"]) == "3.11"
    plans = [node for kind, node in nested_resources(path) if kind.startswith("Microsoft.Web/serverfarms@")]
    sku = object_properties(object_properties(declaration_body(plans[0]))["sku"])
    assert (string_literal(sku["name"]), string_literal(sku["tier"])) == ("FC1", "FlexConsumption")


def test_storage_account_allows_no_shared_keys_and_old_tls():
    path = INFRA / "modules" / "storage.bicep"
    accounts = [node for kind, node in nested_resources(path) if kind.startswith("Microsoft.Storage/storageAccounts@")]
    props = object_properties(object_properties(declaration_body(accounts[0]))["properties"])
    assert text(props["allowSharedKeyAccess"]) == "false"
    assert text(props["supportsHttpsTrafficOnly"]) == "true"
    assert string_literal(props["minimumTlsVersion"]) == "TLS1_2"


# ---- Secrets and role assignments --------------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_secure_parameter_reaches_an_output(path: Path):
    """Outputs land in the deployment history; a secure value must not, even through a variable."""
    declared = bicep(path)
    tainted = {p.name for p in declared.params.values() if p.secure}
    changed = True
    while changed:
        changed = False
        for name, value in declared.variables.items():
            if name not in tainted and value is not None and referenced_names(value) & tainted:
                tainted.add(name)
                changed = True
    for name, value in declared.outputs.items():
        leaked = referenced_names(value) & tainted
        assert not leaked, f"output {name} reads secure value(s) {sorted(leaked)}"
        calls = {text(n.named_children[0]) for n in walk(value) if n.type == "call_expression"}
        assert not {c for c in calls if c.startswith("list")}, f"output {name} calls a list* function"
        assert "password" not in name.lower()


def test_secrets_are_secure_parameters_of_main_bicep():
    params = bicep(MAIN_BICEP).params
    for name in ("OMIS_OUTLOOK_CLIENT_SECRET", "OMIS_TELEGRAM_TOKEN", "OMIS_TELEGRAM_WEBHOOK_SECRET", "OMIS_SECRET_KEY",
                 "authClientSecret"):
        assert params[name].secure, f"{name} must be @secure()"


def test_secret_app_settings_are_key_vault_references():
    settings = object_properties(bicep(MAIN_BICEP).variables["omisSettings"])
    for name in ("OMIS_OUTLOOK_CLIENT_SECRET", "OMIS_TELEGRAM_TOKEN", "OMIS_TELEGRAM_WEBHOOK_SECRET", "OMIS_SECRET_KEY"):
        assert "@Microsoft.KeyVault(SecretUri=" in text(settings[name]), name


def test_role_assignments_live_in_rbac_bicep_with_guid_names():
    rbac = INFRA / "modules" / "rbac.bicep"
    count = 0
    for path in BICEP_FILES:
        for kind, node in nested_resources(path):
            if not kind.startswith("Microsoft.Authorization/roleAssignments@"):
                continue
            assert path == rbac, f"role assignment outside rbac.bicep: {path.relative_to(ROOT)}"
            name = object_properties(declaration_body(node))["name"]
            assert name.type == "call_expression" and text(name.named_children[0]) == "guid", text(name)
            count += 1
    assert count >= 5


# ---- Modules, parameters file, azure.yaml, host.json ------------------------------


def test_modules_exist_and_get_exactly_the_parameters_they_declare():
    for path in BICEP_FILES:
        for module_path, node in bicep(path).modules:
            target = (path.parent / module_path).resolve()
            assert target.exists(), f"{path.name}: module {module_path} not found"
            params = object_properties(declaration_body(node)).get("params")
            given = set(object_properties(params)) if params is not None else set()
            declared = bicep(target).params
            required = {name for name, p in declared.items() if p.default is None}
            assert given <= set(declared), f"{module_path}: unknown parameters {sorted(given - set(declared))}"
            assert required <= given, f"{module_path}: missing parameters {sorted(required - given)}"


def test_main_parameters_json_sets_only_parameters_of_main_bicep():
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    given = set(document["parameters"])
    declared = bicep(MAIN_BICEP).params
    assert given <= set(declared), f"not parameters of main.bicep: {sorted(given - set(declared))}"
    required = {name for name, p in declared.items() if p.default is None}
    assert required <= given, f"azd would have nothing for: {sorted(required - given)}"
    assert document["parameters"]["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert document["parameters"]["location"]["value"] == "${AZURE_LOCATION}"


def test_main_bicep_creates_the_azd_resource_group_at_subscription_scope():
    source = MAIN_BICEP.read_text(encoding="utf-8")
    assert "targetScope = 'subscription'" in source
    groups = [n for kind, n in bicep(MAIN_BICEP).resources if kind.startswith("Microsoft.Resources/resourceGroups@")]
    assert text(object_properties(declaration_body(groups[0]))["name"]) == "'rg-${environmentName}'"


def test_main_bicep_outputs_what_azd_and_operators_use():
    outputs = set(bicep(MAIN_BICEP).outputs)
    expected = {"AZURE_FUNCTION_APP_NAME", "AZURE_FUNCTION_URL", "AZURE_KEY_VAULT_NAME",
                "AZURE_STORAGE_ACCOUNT_NAME", "OMIS_TABLES_ENDPOINT", "AZURE_RESOURCE_GROUP"}
    assert expected <= outputs
    assert all(name == name.upper() for name in outputs)


def test_azure_yaml_declares_the_function_service():
    try:
        import yaml
    except ImportError:
        pytest.fail("PyYAML is needed to check azure.yaml: add PyYAML to requirements-dev.txt")
    document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert document["name"]
    assert document["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    source = (INFRA / "modules" / "functionapp.bicep").read_text(encoding="utf-8")
    assert "'azd-service-name': 'api'" in source, "azd finds the app by the azd-service-name tag"


def test_host_json_serves_routes_at_the_root():
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == ""


# ---- Sign-in, local-only settings, schedules (pitfalls found by attacking a deployment) ------


# Settings that only make sense on an operator's workstation (a local file, the emulator, the
# local author). azd also reads main.parameters.json's ${VARIABLES} from the shell, so an
# `export` for local runs (docs/deploy.md, 7) would otherwise become an app setting.
LOCAL_ONLY_SETTINGS = {"OMIS_OUTLOOK_CERTIFICATE_PATH", "OMIS_DEV_USER", "OMIS_TABLES_CONNECTION_STRING",
                       "OMIS_TABLES_ENDPOINT"}


def _parameter_file_variables() -> dict[str, set[str]]:
    import re

    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for name, entry in document["parameters"].items():
        found[name] = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", json.dumps(entry)))
    return found


def test_main_parameters_json_reads_no_workstation_only_setting():
    used = set().union(*_parameter_file_variables().values())
    leaked = used & LOCAL_ONLY_SETTINGS
    assert not leaked, f"azd would copy these from the operator's shell into app settings: {sorted(leaked)}"


def test_workstation_only_settings_are_fixed_in_the_app_settings():
    settings = object_properties(bicep(MAIN_BICEP).variables["omisSettings"])
    for name in ("OMIS_OUTLOOK_CERTIFICATE_PATH", "OMIS_DEV_USER"):
        assert string_literal(settings[name]) == "", f"{name} must not come from a parameter"


def _variable_text(name: str) -> str:
    return text(bicep(MAIN_BICEP).variables[name])


@pytest.mark.parametrize("setting", ["OMIS_MAIL_SCHEDULE", "OMIS_ALERT_SCHEDULE"])
def test_an_empty_timer_schedule_falls_back_to_the_default(setting: str):
    """`azd env set OMIS_MAIL_SCHEDULE ""` must not reach the Functions host, which cannot run an empty schedule."""
    value = object_properties(bicep(MAIN_BICEP).variables["omisSettings"])[setting]
    assert value.type == "identifier", f"{setting} is the parameter as given: {text(value)}"
    expression = _variable_text(text(value))
    assert f"empty(trim({setting}))" in expression and "defaultSchedule" in expression
    assert string_literal(bicep(MAIN_BICEP).variables["defaultSchedule"]) == "0 */10 * * * *"


def _auth_settings_resource() -> tree_sitter.Node:
    path = INFRA / "modules" / "auth.bicep"
    [node] = [n for kind, n in nested_resources(path) if kind.startswith("Microsoft.Web/sites/config@")]
    return object_properties(declaration_body(node))["properties"]


def test_sign_in_lets_only_the_health_check_and_the_webhook_through():
    validation = object_properties(object_properties(_auth_settings_resource())["globalValidation"])
    assert text(validation["requireAuthentication"]) == "true"
    assert text(validation["excludedPaths"]) == "excludedPaths"
    default = bicep(INFRA / "modules" / "auth.bicep").params["excludedPaths"].default
    assert [string_literal(item) for item in default.named_children] == ["/healthz", "/telegram/webhook"]


def test_the_app_checks_tokens_against_what_sign_in_trusts():
    """The issuer, client id and token store EasyAuth uses are the very values OMIS_AUTH_* get."""
    settings = object_properties(bicep(MAIN_BICEP).variables["omisSettings"])
    assert text(settings["OMIS_AUTH_ISSUER"]) == "authIssuer"
    assert text(settings["OMIS_AUTH_CLIENT_ID"]) == "authClientId"
    assert text(settings["OMIS_AUTH_TOKEN_STORE"]) == "authTokenStore ? 'on' : 'off'"
    [auth] = [node for path, node in bicep(MAIN_BICEP).modules if path == "modules/auth.bicep"]
    given = object_properties(object_properties(declaration_body(auth))["params"])
    assert (text(given["issuer"]), text(given["clientId"]), text(given["tokenStore"])) == (
        "authIssuer", "authClientId", "authTokenStore")
    assert "environment().authentication.loginEndpoint" in _variable_text("authIssuer")
    assert _variable_text("authIssuer").endswith("/v2.0'")
    registration = object_properties(object_properties(object_properties(
        object_properties(_auth_settings_resource())["identityProviders"])["azureActiveDirectory"])["registration"])
    assert text(registration["openIdIssuer"]) == "issuer"
    login = object_properties(object_properties(_auth_settings_resource())["login"])
    assert text(object_properties(login["tokenStore"])["enabled"]) == "tokenStore"


def test_token_store_parameter_defaults_to_off_when_azd_has_no_value():
    assert _parameter_file_variables()["authTokenStore"] == {"AZURE_AUTH_TOKEN_STORE"}
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert document["parameters"]["authTokenStore"]["value"] == "${AZURE_AUTH_TOKEN_STORE=false}"
    assert text(bicep(MAIN_BICEP).params["authTokenStore"].default) == "false"
