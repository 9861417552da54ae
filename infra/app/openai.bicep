// Optional: a new Azure OpenAI account with one judge model deployment. Local (key) auth is
// disabled; the function app calls it with its managed identity (Cognitive Services OpenAI User).

@description('Name of the account; also its custom subdomain (endpoint https://<name>.openai.azure.com/).')
param name string

@description('Azure region (must offer the chosen model).')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Name of the judge deployment (AZURE_OPENAI_DEPLOYMENT).')
param deploymentName string = 'judge'

@description('Model of the judge deployment.')
param modelName string = 'gpt-4o-mini'

@description('Model version of the judge deployment.')
param modelVersion string = '2024-07-18'

@description('Deployment SKU.')
@allowed([
  'GlobalStandard'
  'Standard'
  'DataZoneStandard'
])
param deploymentSkuName string = 'GlobalStandard'

@description('Capacity of the deployment in thousands of tokens per minute.')
@minValue(1)
param capacity int = 30

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: the Flex Consumption app has no VNet here, so it reaches Azure OpenAI over the public endpoint (Entra ID auth only).
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource judge 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSkuName
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = judge.name
