// Second deployment step (after the code is deployed): the Event Grid system topic of the watched
// Azure ML workspace storage account and the subscription that feeds the ingest_blob trigger.
//
// Why a second step: the webhook URL carries the function host's `blobs_extension` system key,
// which exists only once the code is deployed and the host has started with the Event Grid blob
// trigger. scripts/postdeploy.sh (azd postdeploy hook) waits for the key and deploys this file
// into the resource group of the system topic. Re-running it is harmless: every resource is a PUT.
//
// A storage account has at most one system topic, and the topic of an Azure ML workspace account can
// serve other subscriptions. To reuse it, scripts/postdeploy.sh passes what the topic already has
// (identity type, user-assigned identities, tags): the PUT keeps all of it and only adds the
// dead-letter identity, so other subscriptions that deliver or dead-letter with the topic's
// identities keep working.
targetScope = 'resourceGroup'

@description('Name of the system topic: a new one, or the existing system topic of the account (reused).')
param systemTopicName string

@description('Name of the watched Azure ML workspace storage account.')
param mdcStorageAccountName string

@description('Resource group of that account; default: this deployment\'s resource group.')
param mdcStorageResourceGroupName string = resourceGroup().name

@description('Watched container (azureml-blobstore-<guid>); only its modelDataCollector/ blobs ending .jsonl, outside `*_block_blob/` folders, are delivered.')
param mdcContainerName string

@description('Default host name of the function app (AZURE_FUNCTION_APP_HOSTNAME).')
param functionAppHostName string

@description('Function that receives the events (the Event Grid blob trigger).')
param functionName string = 'ingest_blob'

@secure()
@description('The function host\'s blobs_extension system key (from `az functionapp keys list`).')
param blobExtensionKey string

@description('Resource id of the app storage account holding the dead-letter container.')
param deadLetterStorageAccountId string

@description('Dead-letter container in the app storage account.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Resource id of the user-assigned identity Event Grid dead-letters with (Storage Blob Data Contributor on the container).')
param deadLetterIdentityId string

@description('Name of the event subscription.')
param eventSubscriptionName string = 'evgs-ingest-mdc'

@description('Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes an event is retried before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Tags of a new system topic (a reused topic keeps its own: existingTopicTags).')
param tags object = {}

@description('The system topic exists already (reused): keep its identities and tags.')
param reuseExistingTopic bool = false

@description('Identity type of the existing topic (None, SystemAssigned, UserAssigned or "SystemAssigned, UserAssigned").')
param existingTopicIdentityType string = 'None'

@description('User-assigned identities of the existing topic, as {"<resource id>": {}}.')
param existingTopicUserAssignedIdentities object = {}

@description('Tags of the existing topic.')
param existingTopicTags object = {}

// The topic keeps a system-assigned identity it has and every user-assigned identity it has, plus ours.
var keepSystemIdentity = reuseExistingTopic && contains(toLower(existingTopicIdentityType), 'systemassigned')
var topicIdentities = union(reuseExistingTopic ? existingTopicUserAssignedIdentities : {}, {
  '${deadLetterIdentityId}': {}
})

resource mdcStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: mdcStorageAccountName
  scope: resourceGroup(mdcStorageResourceGroupName)
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: mdcStorage.location
  tags: reuseExistingTopic ? existingTopicTags : tags
  identity: {
    type: keepSystemIdentity ? 'SystemAssigned, UserAssigned' : 'UserAssigned'
    userAssignedIdentities: topicIdentities
  }
  properties: {
    source: mdcStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: eventSubscriptionName
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionAppHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${uriComponent(blobExtensionKey)}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${mdcContainerName}/blobs/modelDataCollector/'
      subjectEndsWith: '.jsonl'
      isSubjectCaseSensitive: false
      // Azure ML monitoring copies MDC append blobs into `{collection}_block_blob/` folders before
      // its Spark jobs read them: duplicates of data the monitor already has, never a new source.
      advancedFilters: [
        {
          operatorType: 'StringNotContains'
          key: 'subject'
          values: [
            '_block_blob/'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: deadLetterIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output EVENTGRID_SYSTEM_TOPIC_NAME string = systemTopic.name
output EVENTGRID_SUBSCRIPTION_NAME string = eventSubscription.name
