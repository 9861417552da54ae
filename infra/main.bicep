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

// ---- The watched storage: the Azure ML workspace account (existing), or a dedicated MDC sink.
// docs/deploy.md explains the choice: blob events on the workspace account versus a sink account.

@description('Name of the Azure ML workspace storage account that Model Data Collector writes to; empty when deployMdcSink is true.')
param mdcStorageAccountName string = ''

@description('Resource group of that storage account; empty when deployMdcSink is true.')
param mdcStorageResourceGroupName string = ''

@description('Subscription of that storage account; empty for the subscription of this deployment. Another subscription works when it is in the same Microsoft Entra tenant (a managed identity cannot cross tenants).')
param mdcStorageSubscriptionId string = ''

@description('Container that Model Data Collector writes to (Azure ML names it azureml-blobstore-<guid>); ignored when deployMdcSink is true.')
param mdcContainerName string = ''

@description('Grant the app identity Storage Blob Data Reader on the workspace storage account. Set false when the deployer may not create role assignments there: the deployment then succeeds, and the output MDC_MANUAL_ROLE_ASSIGNMENT is the command someone with those rights runs (docs/deploy.md).')
param assignMdcStorageRole bool = true

@description('Provision a dedicated storage account for Model Data Collector output and watch it instead of the workspace account (no blob events on the workspace account). The outputs MDC_DATASTORE_YAML and MDC_DATA_COLLECTOR_YAML say how to point a deployment at it.')
param deployMdcSink bool = false

@description('Name of the dedicated MDC sink account; empty for a generated name.')
param mdcSinkAccountName string = ''

@description('Container of the dedicated MDC sink account.')
param mdcSinkContainerName string = 'model-data'

@description('Name of the Azure ML datastore that points at the sink container (you register it; see MDC_DATASTORE_YAML).')
param mdcSinkDatastoreName string = 'mdcsink'

@description('Object (principal) id of the online endpoint identity that writes to the sink (Storage Blob Data Contributor on it); empty: MDC_SINK_WRITER_ROLE_ASSIGNMENT is the command to run later.')
param mdcWriterPrincipalId string = ''

@description('Online endpoint name used in the data_collector snippet (MDC_DATA_COLLECTOR_YAML).')
param mlEndpointName string = '<endpoint>'

@description('Online deployment name used in the data_collector snippet (MDC_DATA_COLLECTOR_YAML).')
param mlDeploymentName string = '<deployment>'

// ---- Function app.

@description('Maximum number of instances of the Flex Consumption app.')
@minValue(1)
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
// The workspace account may live in another subscription of the same tenant.
var mdcSubscriptionId = !empty(mdcStorageSubscriptionId) ? mdcStorageSubscriptionId : subscription().subscriptionId
var mdcRgName = !empty(mdcStorageResourceGroupName) ? mdcStorageResourceGroupName : 'unused'
var sinkName = !empty(mdcSinkAccountName) ? mdcSinkAccountName : '${abbrs.storageStorageAccounts}mdc${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

resource mdcStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = if (!deployMdcSink) {
  name: !deployMdcSink ? mdcStorageAccountName : 'unused'
  scope: resourceGroup(mdcSubscriptionId, mdcRgName)
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

// Optional dedicated sink for Model Data Collector output (same hardening as the app account).
module mdcSink 'app/storage.bicep' = if (deployMdcSink) {
  name: 'mdc-sink'
  scope: rg
  params: {
    name: sinkName
    location: location
    tags: tags
    containerNames: [
      mdcSinkContainerName
    ]
  }
}

// What the app watches: the sink when deployed, else the workspace account.
var watchedAccountName = deployMdcSink ? sinkName : mdcStorageAccountName
var watchedResourceGroupName = deployMdcSink ? rgName : mdcStorageResourceGroupName
var watchedSubscriptionId = deployMdcSink ? subscription().subscriptionId : mdcSubscriptionId
var watchedContainerName = deployMdcSink ? mdcSinkContainerName : mdcContainerName
var watchedBlobEndpoint = deployMdcSink ? mdcSink.outputs.blobEndpoint : mdcStorage.properties.primaryEndpoints.blob
var watchedAccountId = '/subscriptions/${watchedSubscriptionId}/resourceGroups/${watchedResourceGroupName}/providers/Microsoft.Storage/storageAccounts/${watchedAccountName}'

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
    mdcBlobEndpoint: watchedBlobEndpoint
    mdcContainerName: watchedContainerName
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

// Role assignments: the app's own group (storage, dead-letter container, App Insights, a new OpenAI
// account, the MDC sink). The OpenAI account name comes from the module output: an implicit
// dependency, so the assignment waits for the account to exist.
module rbacApp 'app/rbac.bicep' = {
  name: 'rbac-app'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    deadLetterPrincipalId: eventGridIdentity.outputs.principalId
    appStorageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    openAiAccountName: createOpenAi ? openAi.outputs.name : ''
    mdcStorageAccountName: deployMdcSink ? mdcSink.outputs.name : ''
    mdcWriterPrincipalId: deployMdcSink ? mdcWriterPrincipalId : ''
  }
}

// Role assignments: the watched Azure ML workspace storage account (read only), in its own
// subscription and group. Optional: a deployer without rights there sets assignMdcStorageRole=false
// and hands MDC_MANUAL_ROLE_ASSIGNMENT to someone who has them.
module rbacMdc 'app/rbac.bicep' = if (assignMdcStorageRole && !deployMdcSink) {
  name: 'rbac-mdc-${resourceToken}'
  scope: resourceGroup(mdcSubscriptionId, mdcRgName)
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
output MDC_STORAGE_ACCOUNT_NAME string = watchedAccountName
output MDC_STORAGE_RESOURCE_GROUP string = watchedResourceGroupName
output MDC_STORAGE_SUBSCRIPTION_ID string = watchedSubscriptionId
output MDC_CONTAINER string = watchedContainerName
// Manual steps, empty when the template did them (docs/deploy.md, "Manual steps").
output MDC_MANUAL_ROLE_ASSIGNMENT string = (deployMdcSink || assignMdcStorageRole) ? '' : 'az role assignment create --assignee-object-id ${identity.outputs.principalId} --assignee-principal-type ServicePrincipal --role "Storage Blob Data Reader" --scope ${watchedAccountId}'
output MDC_SINK_WRITER_ROLE_ASSIGNMENT string = (deployMdcSink && empty(mdcWriterPrincipalId)) ? 'az role assignment create --assignee-object-id <principal id of the online endpoint identity> --assignee-principal-type ServicePrincipal --role "Storage Blob Data Contributor" --scope ${watchedAccountId}' : ''
// The sink as an Azure ML datastore (`az ml datastore create --file`), identity based (no credentials).
output MDC_DATASTORE_YAML string = deployMdcSink ? 'name: ${mdcSinkDatastoreName}\ntype: azure_blob\naccount_name: ${sinkName}\ncontainer_name: ${mdcSinkContainerName}\ndescription: Model Data Collector output watched by the quality monitor\n' : ''
// The data_collector section of the online deployment YAML that writes into the sink.
output MDC_DATA_COLLECTOR_YAML string = deployMdcSink ? 'data_collector:\n  collections:\n    model_inputs:\n      enabled: \'True\'\n      data:\n        name: ${mlEndpointName}-${mlDeploymentName}-model-inputs\n        path: azureml://datastores/${mdcSinkDatastoreName}/paths/modelDataCollector/${mlEndpointName}/${mlDeploymentName}/model_inputs\n        version: 1\n    model_outputs:\n      enabled: \'True\'\n      data:\n        name: ${mlEndpointName}-${mlDeploymentName}-model-outputs\n        path: azureml://datastores/${mdcSinkDatastoreName}/paths/modelDataCollector/${mlEndpointName}/${mlDeploymentName}/model_outputs\n        version: 1\n' : ''
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGridSystemTopicName
output EVENTGRID_IDENTITY_ID string = eventGridIdentity.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
