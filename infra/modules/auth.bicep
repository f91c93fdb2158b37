// App Service Authentication ("Easy Auth", authsettingsV2) with Microsoft Entra ID,
// required on every route (SPEC §5). The signed-in user reaches the app in the
// X-MS-CLIENT-PRINCIPAL-NAME header.
//
// What unauthenticatedClientAction does: with RedirectToLoginPage a browser is
// sent (302) to /.auth/login/aad; App Service documents a 401 instead only for
// "native mobile app" requests, and offers Return401/Return403 only for all paths
// at once. excludedPaths would let the listed paths through WITHOUT sign-in, so it
// is not a way to get a 401 for /api/* and is not used. Scripts calling /api/*
// send an Entra access token (Authorization: Bearer) whose audience is listed in
// allowedAudiences; see docs/deploy.md.

@description('Name of the Function App.')
param siteName string

@description('Application (client) id of the sign-in app registration.')
param clientId string

@description('Tenant of the sign-in app registration.')
param tenantId string

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
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
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
      // OMIS needs no provider tokens; the session cookie carries the identity.
      tokenStore: {
        enabled: false
      }
    }
  }
}
