// App Service Authentication ("Easy Auth", authsettingsV2) with Microsoft Entra ID,
// required on every route but the two that need none (SPEC §5, §9): /healthz and
// /telegram/webhook (Telegram cannot sign in; the webhook checks its own secret).
// The signed-in user reaches the app in X-MS-CLIENT-PRINCIPAL-ID/-NAME, and with the
// token store on also as an ID token (X-MS-TOKEN-AAD-ID-TOKEN) that OMIS verifies
// against the same issuer and client id (functions/auth.py), so a sign-in that is off
// or misconfigured fails closed in the app as well.
//
// What unauthenticatedClientAction does: with RedirectToLoginPage a browser is
// sent (302) to /.auth/login/aad; App Service documents a 401 instead only for
// "native mobile app" requests, and offers Return401/Return403 only for all paths
// at once. excludedPaths lets the listed paths through WITHOUT sign-in: only the two
// above are listed. Scripts calling /api/* send an Entra access token
// (Authorization: Bearer) whose audience is listed in allowedAudiences; see docs/deploy.md.

@description('Name of the Function App.')
param siteName string

@description('Application (client) id of the sign-in app registration.')
param clientId string

@description('OpenID issuer of the sign-in tenant (https://login.microsoftonline.com/<tenant id>/v2.0).')
param issuer string

@description('Keep users\' tokens, so that the ID token reaches the app in X-MS-TOKEN-AAD-ID-TOKEN.')
param tokenStore bool = false

@description('Paths served without sign-in.')
param excludedPaths array = [
  '/healthz'
  '/telegram/webhook'
]

@description('App setting holding the client secret (a Key Vault reference).')
param clientSecretSettingName string = 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          clientSecretSettingName: clientSecretSettingName
          openIdIssuer: issuer
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
        }
      }
    }
    login: {
      // On: the ID token is kept and passed to the app, which verifies it (OMIS_AUTH_TOKEN_STORE).
      tokenStore: {
        enabled: tokenStore
      }
    }
  }
}
