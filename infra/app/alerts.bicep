// Notifications for quality alerts. The app writes an Application Insights custom event
// "QualityAlert" (customDimensions: monitor, metric, segment, kind, window_start, value, threshold) whenever a
// window breaches, has no scores, has too many judge errors or recovers; a log alert rule turns each
// new event into an Azure Monitor alert (one per monitor x metric x segment x kind) and notifies the action group.

@description('Name of the action group.')
param actionGroupName string

@description('Name of the scheduled query (log search) alert rule.')
param alertRuleName string

@description('Azure region of the alert rule (the region of Application Insights).')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Resource id of the Application Insights component that receives QualityAlert events.')
param applicationInsightsId string

@description('Short name of the action group, shown in SMS and e-mail (at most 12 characters).')
@maxLength(12)
param actionGroupShortName string = 'genai-qm'

@description('E-mail addresses to notify.')
param emailReceivers array = []

@description('Severity of the alerts (0 critical .. 4 verbose).')
@minValue(0)
@maxValue(4)
param severity int = 2

@description('How often the rule runs and how far back it looks (ISO 8601 duration).')
param evaluationFrequency string = 'PT15M'

var query = 'customEvents | where name == "QualityAlert" | extend monitor = tostring(customDimensions.monitor), metric = tostring(customDimensions.metric), segment = tostring(customDimensions.segment), kind = tostring(customDimensions.kind)'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    emailReceivers: [
      for (email, i) in emailReceivers: {
        name: 'email-${i}'
        emailAddress: email
        useCommonAlertSchema: true
      }
    ]
  }
}

resource qualityAlertRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'GenAI quality alert'
    description: 'A quality monitor raised an alert (pass_rate, no_scores, error_rate or recovered). See customDimensions for monitor, metric, window and values.'
    severity: severity
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    targetResourceTypes: [
      'microsoft.insights/components'
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    criteria: {
      allOf: [
        {
          query: query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'monitor'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'metric'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'segment'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'kind'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output alertRuleId string = qualityAlertRule.id
