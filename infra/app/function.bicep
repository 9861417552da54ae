// Flex Consumption (FC1) plan + Python 3.11 function app. Every connection is identity based:
// the user-assigned identity reads and writes storage, calls Azure OpenAI and sends telemetry.
// No setting holds a key, a SAS or an AccountKey connection string. The settings live in
// siteConfig.appSettings; binding expressions in function_app.py point at them by name.

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('azd service name the app is tagged with (azure.yaml services key).')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of the user-assigned identity (for identity-based connections and DefaultAzureCredential).')
param identityClientId string

@description('Blob endpoint of the app storage account, with trailing slash.')
param storageBlobEndpoint string

@description('Queue endpoint of the app storage account, with trailing slash.')
param storageQueueEndpoint string

@description('Table endpoint of the app storage account, with trailing slash.')
param storageTableEndpoint string

@description('Container of the app storage account that holds the deployment package.')
param deploymentContainerName string

@description('Blob endpoint of the watched Azure ML workspace storage account (MDC output).')
param mdcBlobEndpoint string

@description('Watched container (Azure ML names it azureml-blobstore-<guid>).')
param mdcContainerName string

@description('Queue of evaluation batches (EVALUATION_QUEUE).')
param evaluationQueueName string = 'evaluation-batches'

@description('NCRONTAB schedule of the aggregation timer (AGGREGATION_SCHEDULE).')
param aggregationSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule of the tail timer (TAIL_SCHEDULE).')
param tailSchedule string = '0 */1 * * * *'

@description('Application Insights connection string (ingestion endpoint; key auth is disabled on the component).')
param applicationInsightsConnectionString string

@description('Azure OpenAI endpoint for the judge; empty when none is configured.')
param openAiEndpoint string = ''

@description('Azure OpenAI deployment (model) name for the judge; empty when none is configured.')
param openAiDeploymentName string = ''

@description('Maximum number of instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var appSettings = {
  // Functions host storage, identity based.
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Results: tables and the evaluation queue (queue trigger connection="MONITOR_STORAGE").
  MONITOR_STORAGE__blobServiceUri: storageBlobEndpoint
  MONITOR_STORAGE__queueServiceUri: storageQueueEndpoint
  MONITOR_STORAGE__tableServiceUri: storageTableEndpoint
  MONITOR_STORAGE__credential: 'managedidentity'
  MONITOR_STORAGE__clientId: identityClientId
  // The watched account (blob trigger connection="MDC_STORAGE", read only). The blob trigger builds
  // a queue client from the same connection even with source=EventGrid (poison messages) and fails
  // indexing without one: it points at the app's own queue endpoint, where the identity already
  // holds Storage Queue Data Contributor (nothing is needed on the watched account).
  MDC_STORAGE__blobServiceUri: mdcBlobEndpoint
  MDC_STORAGE__queueServiceUri: storageQueueEndpoint
  MDC_STORAGE__credential: 'managedidentity'
  MDC_STORAGE__clientId: identityClientId
  MDC_CONTAINER: mdcContainerName
  EVALUATION_QUEUE: evaluationQueueName
  AGGREGATION_SCHEDULE: aggregationSchedule
  TAIL_SCHEDULE: tailSchedule
  // The Python worker indexes the functions while it initialises instead of when the host first asks
  // for their metadata: a shorter cold start. A start-up optimisation only; SDK-type bindings (the
  // BlobClient of ingest_blob) work without it.
  PYTHON_ENABLE_INIT_INDEXING: '1'
  // DefaultAzureCredential picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: identityClientId
  AZURE_OPENAI_ENDPOINT: openAiEndpoint
  AZURE_OPENAI_DEPLOYMENT: openAiDeploymentName
  // Telemetry with Entra ID auth: the component rejects key-only ingestion.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is limited to some regions; the monitor tolerates a zone outage by re-delivery (Event Grid retries, queue and timer catch up).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers blob events to the public webhook; the API is protected by function keys.
  // checkov:skip=CKV_AZURE_17: clients (Event Grid, API callers) authenticate with function keys, not client certificates.
  // checkov:skip=CKV_AZURE_212: serverless scale to zero; Flex Consumption starts instances on demand (always-ready instances would cost money idle).
  // checkov:skip=CKV_AZURE_78: ftpsState is deprecated on Flex Consumption and not set; FTP publishing is off through the basicPublishingCredentialsPolicies 'ftp' resource below (allow: false).
  // checkov:skip=CKV_AZURE_213: the platform health check is not offered on Flex Consumption; GET /api/health serves external probes.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No FTP or basic-auth publishing: azd deploys with an Entra ID token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output planName string = plan.name
