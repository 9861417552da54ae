// Every role assignment of the deployment, least privilege, one data plane at a time.
// The module is deployed once per resource group that holds a scope (the app's group, the Azure ML
// workspace storage group, the group of an existing Azure OpenAI account); each assignment is made
// only when its scope's name is passed. Names are guid(scope id, principal id, role id), so
// re-deployments are idempotent.

@description('Object (principal) id of the function app identity.')
param principalId string

@description('Object (principal) id of the identity Event Grid uses to dead-letter; empty to skip.')
param deadLetterPrincipalId string = ''

@description('The app storage account (host storage, deployment container, tables, queues); empty to skip.')
param appStorageAccountName string = ''

@description('Dead-letter container in the app storage account; empty to skip.')
param deadLetterContainerName string = ''

@description('Application Insights component the app sends telemetry to; empty to skip.')
param applicationInsightsName string = ''

@description('Watched storage account (the Azure ML workspace account or the dedicated MDC sink); empty to skip.')
param mdcStorageAccountName string = ''

@description('Object (principal) id of the online endpoint identity that writes Model Data Collector output into the watched account (the dedicated sink); empty to skip.')
param mdcWriterPrincipalId string = ''

@description('Azure OpenAI account the judge calls; empty to skip.')
param openAiAccountName string = ''

var roles = {
  // Storage Blob Data Owner: host storage (leases, receipts) and the Flex deployment container.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Blob Data Contributor: Event Grid writes undeliverable events to the dead-letter container;
  // the online endpoint writes Model Data Collector output into the dedicated sink.
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Storage Blob Data Reader: read the MDC JSONL files in the watched workspace account.
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  // Storage Queue Data Contributor: evaluation batches, poison queues, host queues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Table Data Contributor: scores, partial aggregates, windows, monitor configs.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Cognitive Services OpenAI User: call chat completions on the judge deployment.
  cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  // Monitoring Metrics Publisher: send telemetry to Application Insights with local auth disabled.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Existing resources are referenced by id only; the placeholder keeps an unused scope's id well formed.
var unused = 'unused'

resource appStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: empty(appStorageAccountName) ? unused : appStorageAccountName
}

resource appBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: appStorage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: appBlobService
  name: empty(deadLetterContainerName) ? unused : deadLetterContainerName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: empty(applicationInsightsName) ? unused : applicationInsightsName
}

resource mdcStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: empty(mdcStorageAccountName) ? unused : mdcStorageAccountName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: empty(openAiAccountName) ? unused : openAiAccountName
}

// ---- App storage: host storage + deployment container, queues, tables (function app identity).

resource appStorageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(appStorageAccountName)) {
  name: guid(appStorage.id, principalId, roles.storageBlobDataOwner)
  scope: appStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource appStorageQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(appStorageAccountName)) {
  name: guid(appStorage.id, principalId, roles.storageQueueDataContributor)
  scope: appStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource appStorageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(appStorageAccountName)) {
  name: guid(appStorage.id, principalId, roles.storageTableDataContributor)
  scope: appStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// ---- Dead-letter container (Event Grid identity), scoped to that one container.

resource deadLetterBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(appStorageAccountName) && !empty(deadLetterContainerName) && !empty(deadLetterPrincipalId)) {
  name: guid(deadLetterContainer.id, deadLetterPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: deadLetterPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// ---- Application Insights (local auth disabled).

resource appInsightsMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(applicationInsightsName)) {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// ---- Watched Azure ML workspace storage: read only. Account scope, because a monitor's
// source.container may name another container of the workspace than MDC_CONTAINER.

resource mdcStorageBlobReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(mdcStorageAccountName)) {
  name: guid(mdcStorage.id, principalId, roles.storageBlobDataReader)
  scope: mdcStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
  }
}

// ---- Dedicated MDC sink: the online endpoint identity writes Model Data Collector output there.

resource mdcWriterBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(mdcStorageAccountName) && !empty(mdcWriterPrincipalId)) {
  name: guid(mdcStorage.id, mdcWriterPrincipalId, roles.storageBlobDataContributor)
  scope: mdcStorage
  properties: {
    principalId: mdcWriterPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// ---- Azure OpenAI (new or existing account).

resource openAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(openAiAccountName)) {
  name: guid(openAi.id, principalId, roles.cognitiveServicesOpenAiUser)
  scope: openAi
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAiUser)
  }
}
