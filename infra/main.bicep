// OMIS in Azure: one resource group rg-<environment> holding a Python 3.11 Function
// App on the Flex Consumption plan, its storage (no shared keys), Key Vault,
// monitoring, a user-assigned identity and App Service Authentication.
// Deployed by the Azure Developer CLI (`azd up`); see docs/deploy.md.
//
// Every setting of functions/settings.py SETTING_NAMES is an app setting of the same
// name below (tests/infra checks it). Non-secret settings an operator chooses are
// parameters named like the setting, with the SPEC §7 default as the parameter default;
// azd fills them from `azd env set OMIS_... value` (and from the shell's environment:
// main.parameters.json names no setting that only makes sense on a workstation, such as
// OMIS_OUTLOOK_CERTIFICATE_PATH). The timer schedules fall back to their default when
// empty, since the Functions host reads them itself and an empty one stops the timer.

targetScope = 'subscription'

// ---- Environment ------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; the resource group is rg-<environmentName>.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of whoever runs the deployment (azd: AZURE_PRINCIPAL_ID); gets table and secret read access. Empty: none.')
param principalId string = ''

@description('Function App name (azd: AZURE_FUNCTION_APP_NAME, set before the first provision to choose it); empty for func-<token>.')
param functionAppName string = ''

@description('Most instances the app may scale out to (Flex Consumption: 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of one instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// ---- Sign-in (App Service Authentication, Microsoft Entra ID) -----------------

@minLength(1)
@description('Application (client) id of the sign-in app registration.')
param authClientId string

@minLength(1)
@secure()
@description('Client secret of the sign-in app registration; stored in Key Vault.')
param authClientSecret string

@description('Tenant (id) of the sign-in app registration; empty for the deployment\'s tenant.')
param authTenantId string = tenant().tenantId

@description('Keep users\' tokens (App Service token store), so OMIS also verifies each request\'s ID token; see docs/deploy.md.')
param authTokenStore bool = false

// ---- OMIS settings (SPEC §7) --------------------------------------------------

@description('Prefix of the OMIS table names.')
param OMIS_TABLE_PREFIX string = 'omis'

@description('Display time zone (IANA name).')
param OMIS_TIMEZONE string = 'Europe/Moscow'

@description('Base URL for links in reminders; empty for https://<app host name>.')
param OMIS_PUBLIC_URL string = ''

@description('accept/update minutes of the one default level when OMIS_SLA_LEVELS is empty.')
param OMIS_DELAY_MINUTES string = '60'

@description('Service levels as JSON (SPEC §4, docs/deadlines.md); empty: one level "normal" after OMIS_DELAY_MINUTES.')
param OMIS_SLA_LEVELS string = ''

@description('Level of a new request when none is chosen; empty: the first level.')
param OMIS_SLA_DEFAULT string = ''

@description('Minutes before a request is reminded about again.')
param OMIS_ALERT_REPEAT_MINUTES string = '60'

@description('Minutes a deadline may stay passed before the request goes to the escalation chat; empty: no escalation.')
param OMIS_ESCALATION_MINUTES string = ''

@description('Telegram chat id of the escalation digest (with OMIS_ESCALATION_MINUTES).')
param OMIS_ESCALATION_CHAT_ID string = ''

@description('Forum topic (message thread) id in the escalation chat.')
param OMIS_ESCALATION_THREAD_ID string = ''

@description('Working hours, e.g. "Mon-Fri 09:00-18:00" in OMIS_TIMEZONE; empty: all hours count.')
param OMIS_WORK_HOURS string = ''

@description('Non-working dates, e.g. "2026-12-31,2027-01-01..2027-01-08".')
param OMIS_HOLIDAYS string = ''

@description('NCRONTAB schedule of the mail timer (six fields, UTC on Flex Consumption).')
param OMIS_MAIL_SCHEDULE string = '0 */10 * * * *'

@description('NCRONTAB schedule of the reminder timer (six fields, UTC on Flex Consumption).')
param OMIS_ALERT_SCHEDULE string = '0 */10 * * * *'

@description('The shared mailbox (UPN or id).')
param OMIS_OUTLOOK_EMAIL string = ''

@description('Tenant of the Graph app registration.')
param OMIS_OUTLOOK_TENANT_ID string = ''

@description('Application (client) id of the Graph app registration.')
param OMIS_OUTLOOK_CLIENT_ID string = ''

@description('Mail folder path, "/"-separated.')
param OMIS_OUTLOOK_FOLDER string = 'Inbox'

@description('How far back (minutes) the first pass reads.')
param OMIS_OUTLOOK_LOOKBACK_MINUTES string = '1440'

@description('Messages per pass at most.')
param OMIS_OUTLOOK_MAX_MESSAGES string = '50'

@description('Microsoft Graph endpoint (national clouds).')
param OMIS_GRAPH_URL string = 'https://graph.microsoft.com'

@description('Sign-in endpoint for Graph tokens (national clouds).')
param OMIS_AUTHORITY_HOST string = 'https://login.microsoftonline.com'

@description('"on" lets OMIS send mail from OMIS_OUTLOOK_EMAIL (needs Graph Mail.Send, see docs/deploy.md).')
param OMIS_MAIL_SEND string = 'off'

@description('The contractor\'s address(es), comma-separated, for mail OMIS sends.')
param OMIS_CONTRACTOR_EMAIL string = ''

@description('"on": when a contractor deadline passes, OMIS sends the contractor one nudge per deadline.')
param OMIS_AUTO_NUDGE string = 'off'

@description('Telegram chat id for reminders.')
param OMIS_TELEGRAM_CHAT_ID string = ''

@description('Forum topic (message thread) id in that chat.')
param OMIS_TELEGRAM_THREAD_ID string = ''

@description('Telegram Bot API endpoint.')
param OMIS_TELEGRAM_API_URL string = 'https://api.telegram.org'

// Secrets: stored in Key Vault, referenced from app settings, never in outputs.

@secure()
@description('Client secret of the Graph app registration; empty if not used.')
param OMIS_OUTLOOK_CLIENT_SECRET string = ''

@secure()
@description('Telegram bot token; empty: reminders go to the log only.')
param OMIS_TELEGRAM_TOKEN string = ''

@secure()
@description('Secret Telegram sends with each webhook update; empty: POST /telegram/webhook answers 404 (docs/telegram.md).')
param OMIS_TELEGRAM_WEBHOOK_SECRET string = ''

@secure()
@description('Signs CSRF tokens and flash cookies. azd keeps it stable through Key Vault (main.parameters.json).')
param OMIS_SECRET_KEY string = replace('${newGuid()}${newGuid()}', '-', '')

// ---- Names --------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appName = !empty(functionAppName) ? functionAppName : 'func-${resourceToken}'
var deploymentContainerName = toLower('app-package-${take(appName, 32)}-${take(resourceToken, 7)}')

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    outlookClientSecret: OMIS_OUTLOOK_CLIENT_SECRET
    hasOutlookClientSecret: !empty(OMIS_OUTLOOK_CLIENT_SECRET)
    telegramToken: OMIS_TELEGRAM_TOKEN
    hasTelegramToken: !empty(OMIS_TELEGRAM_TOKEN)
    telegramWebhookSecret: OMIS_TELEGRAM_WEBHOOK_SECRET
    hasTelegramWebhookSecret: !empty(OMIS_TELEGRAM_WEBHOOK_SECRET)
    omisSecretKey: OMIS_SECRET_KEY
    authClientSecret: authClientSecret
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
  }
}

// What App Service Authentication trusts, and OMIS checks ID tokens against (functions/auth.py).
var authTenant = !empty(authTenantId) ? authTenantId : tenant().tenantId
var authIssuer = '${environment().authentication.loginEndpoint}${authTenant}/v2.0'
var defaultSchedule = '0 */10 * * * *'
var mailSchedule = empty(trim(OMIS_MAIL_SCHEDULE)) ? defaultSchedule : OMIS_MAIL_SCHEDULE
var alertSchedule = empty(trim(OMIS_ALERT_SCHEDULE)) ? defaultSchedule : OMIS_ALERT_SCHEDULE

var outlookSecretUri = keyVault.outputs.outlookClientSecretUri
var telegramTokenUri = keyVault.outputs.telegramTokenUri
var telegramWebhookSecretUri = keyVault.outputs.telegramWebhookSecretUri

// SPEC §7 settings, by their own names. Secrets are Key Vault references.
var omisSettings = {
  // Tables are reached by managed identity through OMIS_TABLES_ENDPOINT, which wins
  // over the connection string; with shared keys disabled no key-based string works.
  OMIS_TABLES_CONNECTION_STRING: ''
  OMIS_TABLES_ENDPOINT: storage.outputs.tableEndpoint
  OMIS_TABLE_PREFIX: OMIS_TABLE_PREFIX
  OMIS_SECRET_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.omisSecretKeyUri})'
  OMIS_TIMEZONE: OMIS_TIMEZONE
  OMIS_PUBLIC_URL: OMIS_PUBLIC_URL
  // In Azure every request is signed in; the local default author is never used.
  OMIS_DEV_USER: ''
  OMIS_DELAY_MINUTES: OMIS_DELAY_MINUTES
  OMIS_SLA_LEVELS: OMIS_SLA_LEVELS
  OMIS_SLA_DEFAULT: OMIS_SLA_DEFAULT
  OMIS_ALERT_REPEAT_MINUTES: OMIS_ALERT_REPEAT_MINUTES
  OMIS_ESCALATION_MINUTES: OMIS_ESCALATION_MINUTES
  OMIS_ESCALATION_CHAT_ID: OMIS_ESCALATION_CHAT_ID
  OMIS_ESCALATION_THREAD_ID: OMIS_ESCALATION_THREAD_ID
  OMIS_WORK_HOURS: OMIS_WORK_HOURS
  OMIS_HOLIDAYS: OMIS_HOLIDAYS
  OMIS_MAIL_SCHEDULE: mailSchedule
  OMIS_ALERT_SCHEDULE: alertSchedule
  OMIS_OUTLOOK_EMAIL: OMIS_OUTLOOK_EMAIL
  OMIS_OUTLOOK_TENANT_ID: OMIS_OUTLOOK_TENANT_ID
  OMIS_OUTLOOK_CLIENT_ID: OMIS_OUTLOOK_CLIENT_ID
  OMIS_OUTLOOK_CLIENT_SECRET: empty(outlookSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${outlookSecretUri})'
  // Flex Consumption has no way to a certificate file (docs/deploy.md, 3в): secret only.
  OMIS_OUTLOOK_CERTIFICATE_PATH: ''
  OMIS_OUTLOOK_FOLDER: OMIS_OUTLOOK_FOLDER
  OMIS_OUTLOOK_LOOKBACK_MINUTES: OMIS_OUTLOOK_LOOKBACK_MINUTES
  OMIS_OUTLOOK_MAX_MESSAGES: OMIS_OUTLOOK_MAX_MESSAGES
  OMIS_GRAPH_URL: OMIS_GRAPH_URL
  OMIS_AUTHORITY_HOST: OMIS_AUTHORITY_HOST
  OMIS_MAIL_SEND: OMIS_MAIL_SEND
  OMIS_CONTRACTOR_EMAIL: OMIS_CONTRACTOR_EMAIL
  OMIS_AUTO_NUDGE: OMIS_AUTO_NUDGE
  OMIS_TELEGRAM_TOKEN: empty(telegramTokenUri) ? '' : '@Microsoft.KeyVault(SecretUri=${telegramTokenUri})'
  OMIS_TELEGRAM_CHAT_ID: OMIS_TELEGRAM_CHAT_ID
  OMIS_TELEGRAM_THREAD_ID: OMIS_TELEGRAM_THREAD_ID
  OMIS_TELEGRAM_API_URL: OMIS_TELEGRAM_API_URL
  OMIS_TELEGRAM_WEBHOOK_SECRET: empty(telegramWebhookSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${telegramWebhookSecretUri})'
  OMIS_AUTH_ISSUER: authIssuer
  OMIS_AUTH_CLIENT_ID: authClientId
  OMIS_AUTH_TOKEN_STORE: authTokenStore ? 'on' : 'off'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // The identity must hold its roles before the app pulls its package and resolves
  // its Key Vault references.
  dependsOn: [
    rbac
  ]
  params: {
    name: appName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    authClientSecretUri: keyVault.outputs.authClientSecretUri
    omisSettings: omisSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module auth 'modules/auth.bicep' = {
  name: 'auth'
  scope: rg
  params: {
    siteName: functionApp.outputs.name
    clientId: authClientId
    issuer: authIssuer
    tokenStore: authTokenStore
  }
}

// ---- Outputs (azd stores them in .azure/<env>/.env) ---------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_URL string = functionApp.outputs.uri
output AZURE_AUTH_REDIRECT_URI string = '${functionApp.outputs.uri}/.auth/login/aad/callback'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output OMIS_TABLES_ENDPOINT string = storage.outputs.tableEndpoint
