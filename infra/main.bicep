// GenAI quality monitor: everything the function app needs in Azure, keyless.
// Deploy with `azd up` (azure.yaml) or `az deployment sub create` (docs/deploy.md). The Event Grid
// subscription that feeds the blob trigger is a second step (eventgrid.bicep, scripts/postdeploy.sh)
// because the webhook needs the blobs_extension system key, which exists only after code deployment.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd env name); used in resource names and tags.')
param environmentName string

@minLength(1)
@description('Azure region of the new resources (must offer Flex Consumption).')
param location string

// ---- The watched Azure ML workspace storage (existing).

@description('Name of the Azure ML workspace storage account that Model Data Collector writes to.')
param mdcStorageAccountName string

@description('Resource group of that storage account.')
param mdcStorageResourceGroupName string

@description('Container that Model Data Collector writes to (Azure ML names it azureml-blobstore-<guid>).')
param mdcContainerName string

// ---- Function app.

@description('Maximum number of instances of the Flex Consumption app.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Instance memory of the Flex Consumption app in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Queue of evaluation batches (app setting EVALUATION_QUEUE).')
param evaluationQueueName string = 'evaluation-batches'

@description('NCRONTAB schedule of the aggregation timer (app setting AGGREGATION_SCHEDULE).')
param aggregationSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule of the tail timer that reads growing blobs and sweeps for new ones (app setting TAIL_SCHEDULE).')
param tailSchedule string = '0 */1 * * * *'

// ---- Judge: an existing Azure OpenAI account, or optionally a new one.

@description('Name of an existing Azure OpenAI account for the judge; empty for none (or for a new one, see deployOpenAi).')
param existingOpenAiAccountName string = ''

@description('Resource group of that account; empty for the app resource group.')
param existingOpenAiResourceGroupName string = ''

@description('Deployment (model) name of the judge on the existing account.')
param existingOpenAiDeploymentName string = ''

@description('Create a new Azure OpenAI account with a judge deployment (ignored when an existing account is given).')
param deployOpenAi bool = false

@description('Region of a new Azure OpenAI account; empty for location.')
param openAiLocation string = ''

@description('Model of the new judge deployment.')
param openAiModelName string = 'gpt-4o-mini'

@description('Model version of the new judge deployment.')
param openAiModelVersion string = '2024-07-18'

@description('Capacity of the new judge deployment in thousands of tokens per minute.')
param openAiCapacity int = 30

// ---- Alerts.

@description('Comma-separated e-mail addresses notified of quality alerts; empty for none.')
param alertEmails string = ''

@description('Severity of quality alerts (0 critical .. 4 verbose).')
@minValue(0)
@maxValue(4)
param alertSeverity int = 2

// ---- Event Grid (second step): names recorded here so that postdeploy uses the same ones.

@description('Name of the Event Grid system topic of the watched storage account. An account has at most one system topic: give the existing topic name to reuse it; empty for a new evgt-<account> topic or the existing one found by scripts/postdeploy.sh.')
param eventGridSystemTopicName string = ''

// ---- Name overrides (empty: generated from abbreviations.json and a resource token).

param resourceGroupName string = ''
param storageAccountName string = ''
param functionAppName string = ''
param functionPlanName string = ''
param identityName string = ''
param eventGridIdentityName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''
param openAiAccountName string = ''
param actionGroupName string = ''
param alertRuleName string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var rgName = !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = toLower('app-package-${take(appName, 32)}-${take(resourceToken, 7)}')
var deadLetterContainerName = 'eventgrid-deadletter'
var useExistingOpenAi = !empty(existingOpenAiAccountName)
var createOpenAi = deployOpenAi && !useExistingOpenAi
var existingOpenAiRgName = !empty(existingOpenAiResourceGroupName) ? existingOpenAiResourceGroupName : rgName
var newOpenAiName = !empty(openAiAccountName) ? openAiAccountName : '${abbrs.cognitiveServicesOpenAI}${resourceToken}'
var alertEmailList = empty(alertEmails) ? [] : split(replace(alertEmails, ' ', ''), ',')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

resource mdcStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: mdcStorageAccountName
  scope: resourceGroup(mdcStorageResourceGroupName)
}

resource existingOpenAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (useExistingOpenAi) {
  name: useExistingOpenAi ? existingOpenAiAccountName : 'unused'
  scope: resourceGroup(existingOpenAiRgName)
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: !empty(identityName) ? identityName : '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module eventGridIdentity 'app/identity.bicep' = {
  name: 'eventgrid-identity'
  scope: rg
  params: {
    name: !empty(eventGridIdentityName) ? eventGridIdentityName : '${abbrs.managedIdentityUserAssignedIdentities}evgt-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
      deadLetterContainerName
    ]
    queueNames: [
      evaluationQueueName
      '${evaluationQueueName}-poison'
    ]
  }
}

module openAi 'app/openai.bicep' = if (createOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: newOpenAiName
    location: !empty(openAiLocation) ? openAiLocation : location
    tags: tags
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    capacity: openAiCapacity
  }
}

var openAiEndpoint = useExistingOpenAi ? existingOpenAi.properties.endpoint : (createOpenAi ? openAi.outputs.endpoint : '')
var openAiDeployment = useExistingOpenAi ? existingOpenAiDeploymentName : (createOpenAi ? openAi.outputs.deploymentName : '')

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: appName
    planName: !empty(functionPlanName) ? functionPlanName : '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    mdcBlobEndpoint: mdcStorage.properties.primaryEndpoints.blob
    mdcContainerName: mdcContainerName
    evaluationQueueName: evaluationQueueName
    aggregationSchedule: aggregationSchedule
    tailSchedule: tailSchedule
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    openAiEndpoint: openAiEndpoint
    openAiDeploymentName: openAiDeployment
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

// Role assignments: the app's own group (storage, dead-letter container, App Insights, a new OpenAI account).
module rbacApp 'app/rbac.bicep' = {
  name: 'rbac-app'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    deadLetterPrincipalId: eventGridIdentity.outputs.principalId
    appStorageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    openAiAccountName: createOpenAi ? newOpenAiName : ''
  }
}

// Role assignments: the watched Azure ML workspace storage account (read only).
module rbacMdc 'app/rbac.bicep' = {
  name: 'rbac-mdc-${resourceToken}'
  scope: resourceGroup(mdcStorageResourceGroupName)
  params: {
    principalId: identity.outputs.principalId
    mdcStorageAccountName: mdcStorageAccountName
  }
}

// Role assignments: an existing Azure OpenAI account.
module rbacOpenAi 'app/rbac.bicep' = if (useExistingOpenAi) {
  name: 'rbac-openai-${resourceToken}'
  scope: resourceGroup(existingOpenAiRgName)
  params: {
    principalId: identity.outputs.principalId
    openAiAccountName: existingOpenAiAccountName
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    actionGroupName: !empty(actionGroupName) ? actionGroupName : '${abbrs.insightsActionGroups}${resourceToken}'
    alertRuleName: !empty(alertRuleName) ? alertRuleName : '${abbrs.insightsScheduledQueryRules}quality-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    emailReceivers: alertEmailList
    severity: alertSeverity
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_OPENAI_ENDPOINT string = openAiEndpoint
output AZURE_OPENAI_DEPLOYMENT string = openAiDeployment
output AZURE_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
output MDC_STORAGE_ACCOUNT_NAME string = mdcStorageAccountName
output MDC_STORAGE_RESOURCE_GROUP string = mdcStorageResourceGroupName
output MDC_CONTAINER string = mdcContainerName
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGridSystemTopicName
output EVENTGRID_IDENTITY_ID string = eventGridIdentity.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
