// Key Vault (RBAC authorization) holding the secrets the app reads through
// Key Vault references: @Microsoft.KeyVault(SecretUri=...). Secret values come in
// as secure parameters and never leave this module; only their URIs do.
// Optional secrets are written only when a value was given (has* flags), so an
// empty parameter never creates an empty secret.

@description('Name of the Key Vault (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Microsoft Entra tenant of the vault.')
param tenantId string = tenant().tenantId

@description('Client secret of the Graph app registration (OMIS_OUTLOOK_CLIENT_SECRET).')
@secure()
param outlookClientSecret string = ''

@description('Whether outlookClientSecret was given.')
param hasOutlookClientSecret bool = false

@description('Telegram bot token (OMIS_TELEGRAM_TOKEN).')
@secure()
param telegramToken string = ''

@description('Whether telegramToken was given.')
param hasTelegramToken bool = false

@description('Secret Telegram sends with each webhook update (OMIS_TELEGRAM_WEBHOOK_SECRET).')
@secure()
param telegramWebhookSecret string = ''

@description('Whether telegramWebhookSecret was given.')
param hasTelegramWebhookSecret bool = false

@description('Key that signs CSRF tokens and flash cookies (OMIS_SECRET_KEY).')
@secure()
param omisSecretKey string

@description('Client secret of the sign-in app registration (App Service Authentication).')
@secure()
param authClientSecret string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource outlookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (hasOutlookClientSecret) {
  parent: vault
  name: 'omis-outlook-client-secret'
  properties: {
    value: outlookClientSecret
    contentType: 'text/plain'
  }
}

resource telegramSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (hasTelegramToken) {
  parent: vault
  name: 'omis-telegram-token'
  properties: {
    value: telegramToken
    contentType: 'text/plain'
  }
}

resource telegramWebhookSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (hasTelegramWebhookSecret) {
  parent: vault
  name: 'omis-telegram-webhook-secret'
  properties: {
    value: telegramWebhookSecret
    contentType: 'text/plain'
  }
}

// The name azd's secretOrRandomPassword reads back on the next provision
// (see main.parameters.json), so the key survives re-deployments.
resource sessionSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'omis-secret-key'
  properties: {
    value: omisSecretKey
    contentType: 'text/plain'
  }
}

resource authSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'auth-client-secret'
  properties: {
    value: authClientSecret
    contentType: 'text/plain'
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
// Version-less URIs: App Service picks up a new secret version without a redeploy.
output outlookClientSecretUri string = hasOutlookClientSecret ? outlookSecret.properties.secretUri : ''
output telegramTokenUri string = hasTelegramToken ? telegramSecret.properties.secretUri : ''
output telegramWebhookSecretUri string = hasTelegramWebhookSecret ? telegramWebhookSecretEntry.properties.secretUri : ''
output omisSecretKeyUri string = sessionSecret.properties.secretUri
output authClientSecretUri string = authSecret.properties.secretUri
