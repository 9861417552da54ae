"""Layer 2: what the templates must say, asserted over pycep-parser JSON (and raw text for secrets).

No keys or secrets anywhere, identity-based connection settings, storage hardening, every role
assignment with its role id, scope and principal, the Event Grid filter and dead-letter, the alert
rule, and the app-setting names that function_app.py binds to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep_json import (
    INFRA,
    REPO,
    accessor,
    bicep_files,
    body,
    condition,
    main_parameters,
    module,
    parse,
    raw,
    resource,
    resources_of_type,
    strings,
    strip_comments,
    unwrap,
)

FUNCTION = "app/function.bicep"
RBAC = "app/rbac.bicep"
STORAGE = "app/storage.bicep"

# Built-in role definition ids (the same in every tenant).
ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "cognitiveServicesOpenAiUser": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# Broad roles that must never be granted: Owner, Contributor, User Access Administrator,
# Storage Account Contributor, Cognitive Services Contributor.
FORBIDDEN_ROLE_IDS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68",
}

# symbol in rbac.bicep -> (role key, scope symbol, scope resource type, principal parameter)
EXPECTED_ASSIGNMENTS = {
    "appStorageBlobOwner": ("storageBlobDataOwner", "appStorage", "Microsoft.Storage/storageAccounts", "principalId"),
    "appStorageQueueContributor": (
        "storageQueueDataContributor",
        "appStorage",
        "Microsoft.Storage/storageAccounts",
        "principalId",
    ),
    "appStorageTableContributor": (
        "storageTableDataContributor",
        "appStorage",
        "Microsoft.Storage/storageAccounts",
        "principalId",
    ),
    "deadLetterBlobContributor": (
        "storageBlobDataContributor",
        "deadLetterContainer",
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "deadLetterPrincipalId",
    ),
    "appInsightsMetricsPublisher": (
        "monitoringMetricsPublisher",
        "applicationInsights",
        "Microsoft.Insights/components",
        "principalId",
    ),
    "mdcStorageBlobReader": ("storageBlobDataReader", "mdcStorage", "Microsoft.Storage/storageAccounts", "principalId"),
    "openAiUser": ("cognitiveServicesOpenAiUser", "openAi", "Microsoft.CognitiveServices/accounts", "principalId"),
    "mdcWriterBlobContributor": (
        "storageBlobDataContributor",
        "mdcStorage",
        "Microsoft.Storage/storageAccounts",
        "mdcWriterPrincipalId",
    ),
}


def app_settings() -> dict[str, Any]:
    return parse(FUNCTION)["variables"]["appSettings"]["value"]  # type: ignore[no-any-return]


def function_params() -> dict[str, Any]:
    return parse(FUNCTION)["parameters"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- secrets and keys


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_key_material_in_templates(path: Path) -> None:
    code = strip_comments(path.read_text(encoding="utf-8"))
    lowered = code.lower()
    for needle in (
        "listkeys(",
        "listconnectionstrings(",
        "listaccountsas(",
        "listservicesas(",
        "listsecrets(",
        "listcredentials(",
        "accountkey",
        "sharedaccesssignature",
        "sharedaccesskey",
        "primarykey",
        "secondarykey",
    ):
        assert needle not in lowered, f"{path.name} uses {needle!r}"


def test_no_key_material_in_parameters_and_azure_yaml() -> None:
    for path in (INFRA / "main.parameters.json", REPO / "azure.yaml"):
        lowered = path.read_text(encoding="utf-8").lower()
        for needle in ("accountkey", "sharedaccesssignature", "apikey", "api_key", "password"):
            assert needle not in lowered, f"{path.name} mentions {needle!r}"


def test_only_secure_parameter_is_the_webhook_key_and_it_has_no_default() -> None:
    secure = {
        (path.relative_to(INFRA).as_posix(), name)
        for path in bicep_files()
        for name, param in parse(path.relative_to(INFRA).as_posix())["parameters"].items()
        if any(d.get("type") == "secure" for d in param.get("decorators", []))
    }
    assert secure == {("eventgrid.bicep", "blobExtensionKey")}
    assert parse("eventgrid.bicep")["parameters"]["blobExtensionKey"]["default"] is None
    for output in parse("eventgrid.bicep")["outputs"].values():
        assert not any("blobExtensionKey" in s for s in strings(output["value"]))


def test_no_connection_string_settings_except_keyless_app_insights() -> None:
    settings = app_settings()
    for name in settings:
        if "connectionstring" in name.lower().replace("_", ""):
            assert name == "APPLICATIONINSIGHTS_CONNECTION_STRING"
    # A bare connection name would be read as a connection string (with a key): only groups exist.
    for name in ("AzureWebJobsStorage", "MONITOR_STORAGE", "MDC_STORAGE"):
        assert name not in settings
    for forbidden in (
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "APPINSIGHTS_INSTRUMENTATIONKEY",
        "AzureWebJobsSecretStorageType",
    ):
        assert forbidden not in settings
    # Flex Consumption rejects the classic runtime settings (runtime is functionAppConfig.runtime).
    for classic in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"):
        assert classic not in settings


# ---------------------------------------------------------------- identity-based settings


@pytest.mark.parametrize(
    ("connection", "services"),
    [
        ("AzureWebJobsStorage", ("blob", "queue", "table")),
        ("MONITOR_STORAGE", ("blob", "queue", "table")),
        ("MDC_STORAGE", ("blob", "queue")),
    ],
)
def test_identity_based_connection_group(connection: str, services: tuple[str, ...]) -> None:
    settings = app_settings()
    assert settings[f"{connection}__credential"] == "managedidentity"
    assert settings[f"{connection}__clientId"] == "identityClientId"
    for service in services:
        value = settings[f"{connection}__{service}ServiceUri"]
        watched_blob = connection == "MDC_STORAGE" and service == "blob"
        expected = "mdcBlobEndpoint" if watched_blob else f"storage{service.capitalize()}Endpoint"
        assert value == expected
        assert value in function_params()


def test_blob_trigger_connection_has_a_queue_endpoint_of_the_app_account() -> None:
    """The blob trigger builds a queue client from its connection even with source=EventGrid
    (poison messages) and fails indexing without one. It is the app's own queue endpoint, where the
    identity holds Storage Queue Data Contributor; the watched account needs nothing more."""
    settings = app_settings()
    assert settings["MDC_STORAGE__queueServiceUri"] == "storageQueueEndpoint"
    assert settings["MDC_STORAGE__queueServiceUri"] == settings["MONITOR_STORAGE__queueServiceUri"]
    assert "mdcQueueEndpoint" not in function_params()
    assert accessor(module("main.bicep", "functionApp")["config"]["params"]["storageQueueEndpoint"]) == (
        "storage.outputs.queueEndpoint"
    )
    assert "appStorageQueueContributor" in EXPECTED_ASSIGNMENTS


def test_init_indexing_comment_says_what_the_setting_does() -> None:
    text = raw(FUNCTION)
    block = text[: text.index("PYTHON_ENABLE_INIT_INDEXING")].rsplit("\n\n", 1)[-1]
    assert "SDK-type bindings" in block and "work without it" in block, block


def test_other_app_settings() -> None:
    settings = app_settings()
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert settings["MDC_CONTAINER"] == "mdcContainerName"
    assert settings["EVALUATION_QUEUE"] == "evaluationQueueName"
    assert settings["AGGREGATION_SCHEDULE"] == "aggregationSchedule"
    assert settings["TAIL_SCHEDULE"] == "tailSchedule"
    assert settings["AZURE_OPENAI_ENDPOINT"] == "openAiEndpoint"
    assert settings["AZURE_OPENAI_DEPLOYMENT"] == "openAiDeploymentName"
    params = function_params()
    assert params["evaluationQueueName"]["default"] == "evaluation-batches"
    assert params["aggregationSchedule"]["default"] == "0 */15 * * * *"
    assert params["openAiEndpoint"]["default"] == ""
    assert params["openAiDeploymentName"]["default"] == ""
    main = parse("main.bicep")["parameters"]
    assert main["evaluationQueueName"]["default"] == "evaluation-batches"
    assert main["aggregationSchedule"]["default"] == "0 */15 * * * *"
    assert main["tailSchedule"]["default"] == params["tailSchedule"]["default"] == "0 */1 * * * *"


def test_app_settings_are_applied_to_the_site() -> None:
    site_config = body(FUNCTION, "functionApp")["properties"]["siteConfig"]
    loop = site_config["appSettings"]
    assert loop["loop_type"]["detail"]["array_name"] == {
        "function": {"type": "items", "parameters": {"arg_1": "appSettings"}}
    }
    item = loop["loop_type"]["detail"]["item_name"]
    assert accessor(loop["config"]["name"]) == f"{item}.key"
    assert accessor(loop["config"]["value"]) == f"{item}.value"


# ---------------------------------------------------------------- function app (Flex Consumption)


def test_flex_consumption_function_app() -> None:
    plan = body(FUNCTION, "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    site_resource = resource(FUNCTION, "functionApp")
    assert site_resource["type"] == "Microsoft.Web/sites"
    assert site_resource["api_version"] >= "2024-04-01"
    site = body(FUNCTION, "functionApp")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert "ftpsState" not in props["siteConfig"], "ftpsState is deprecated on Flex Consumption"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {
        "maximumInstanceCount": "maximumInstanceCount",
        "instanceMemoryMB": "instanceMemoryMB",
    }
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    for policy in ("ftpPublishing", "scmPublishing"):
        assert body(FUNCTION, policy)["properties"] == {"allow": False}
    main = parse("main.bicep")["parameters"]
    assert {"maximumInstanceCount", "instanceMemoryMB"} <= set(main)
    for params in (main, function_params()):
        decorators = {d["type"]: d for d in params["maximumInstanceCount"]["decorators"]}
        assert decorators["min_value"]["argument"] == 1, "Flex Consumption accepts a maximum of 1 and up"
    params = module("main.bicep", "functionApp")["config"]["params"]
    assert params["maximumInstanceCount"] == "maximumInstanceCount"
    assert params["instanceMemoryMB"] == "instanceMemoryMB"


def test_azd_service_tag_matches_azure_yaml() -> None:
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    (service_name,) = azure_yaml["services"]
    service = azure_yaml["services"][service_name]
    assert service == {"project": ".", "language": "python", "host": "function"}
    tags = body(FUNCTION, "functionApp")["tags"]["function"]
    assert tags["type"] == "union"
    assert tags["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}
    assert function_params()["serviceName"]["default"] == service_name == "api"


# ---------------------------------------------------------------- storage and other data planes


def test_app_storage_is_hardened() -> None:
    props = body(STORAGE, "storage")["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True
    assert props["allowCrossTenantReplication"] is False
    assert unwrap(body(STORAGE, "containers"))["properties"]["publicAccess"] == "None"


def test_every_storage_account_in_any_template_disables_shared_keys() -> None:
    for path in bicep_files():
        rel = path.relative_to(INFRA).as_posix()
        for symbol, res in resources_of_type(rel, "Microsoft.Storage/storageAccounts").items():
            if res["existing"]:
                continue
            props = unwrap(res["config"])["properties"]
            assert props["allowSharedKeyAccess"] is False, f"{rel}:{symbol}"
            assert props["minimumTlsVersion"] == "TLS1_2", f"{rel}:{symbol}"
            assert props["allowBlobPublicAccess"] is False, f"{rel}:{symbol}"


def test_queues_and_containers_the_app_needs() -> None:
    params = module("main.bicep", "storage")["config"]["params"]
    assert params["queueNames"] == ["evaluationQueueName", "${evaluationQueueName}-poison"]
    assert params["containerNames"] == ["deploymentContainerName", "deadLetterContainerName"]
    variables = parse("main.bicep")["variables"]
    assert variables["deadLetterContainerName"]["value"] == "eventgrid-deadletter"


def test_local_auth_disabled_on_monitoring_and_openai() -> None:
    assert body("app/monitoring.bicep", "applicationInsights")["properties"]["DisableLocalAuth"] is True
    assert body("app/monitoring.bicep", "logAnalytics")["properties"]["features"]["disableLocalAuth"] is True
    account = body("app/openai.bicep", "account")
    assert account["kind"] == "OpenAI"
    assert account["properties"]["disableLocalAuth"] is True
    assert account["properties"]["customSubDomainName"] == "name"


# ---------------------------------------------------------------- role assignments


def test_role_ids_are_named_and_correct() -> None:
    roles = parse(RBAC)["variables"]["roles"]["value"]
    assert roles == ROLE_IDS
    text = raw(RBAC)
    for key in ROLE_IDS:
        assert re.search(rf"//[^\n]*\n\s*{key}:", text), f"role {key} needs a comment naming it"


def test_role_assignments_only_in_rbac_bicep() -> None:
    for path in bicep_files():
        rel = path.relative_to(INFRA).as_posix()
        found = resources_of_type(rel, "Microsoft.Authorization/roleAssignments")
        if rel == RBAC:
            assert set(found) == set(EXPECTED_ASSIGNMENTS), "role assignments differ from the least-privilege set"
        else:
            assert not found, f"{rel} declares role assignments; keep them all in {RBAC}"
        lowered = path.read_text(encoding="utf-8").lower()
        for role_id in FORBIDDEN_ROLE_IDS:
            assert role_id not in lowered, f"{rel} grants a broad role {role_id}"


@pytest.mark.parametrize("symbol", sorted(EXPECTED_ASSIGNMENTS))
def test_role_assignment(symbol: str) -> None:
    role_key, scope, scope_type, principal = EXPECTED_ASSIGNMENTS[symbol]
    res = resource(RBAC, symbol)
    assert condition(res["config"]) is not None, "each assignment is made only when its scope is passed"
    spec = unwrap(res["config"])
    assert spec["scope"] == scope
    scope_res = resource(RBAC, scope)
    assert scope_res["existing"] is True
    assert scope_res["type"] == scope_type
    guid = spec["name"]["function"]
    assert guid["type"] == "guid"
    args = guid["parameters"]
    assert accessor(args["base_string"]) == f"{scope}.id"
    assert args["extra_string_1"] == principal
    assert accessor(args["extra_string_2"]) == f"roles.{role_key}"
    props = spec["properties"]
    assert props["principalId"] == principal
    assert props["principalType"] == "ServicePrincipal"
    role_def = props["roleDefinitionId"]["function"]
    assert role_def["type"] == "subscription_resource_id"
    assert role_def["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    assert accessor(role_def["parameters"]["resource_name_1"]) == f"roles.{role_key}"


def test_rbac_module_invocations_cover_every_scope() -> None:
    main = parse("main.bicep")["modules"]
    rbac = {name: m for name, m in main.items() if m["detail"]["path"] == "app/rbac.bicep"}
    assert set(rbac) == {"rbacApp", "rbacMdc", "rbacOpenAi"}

    app = unwrap(rbac["rbacApp"]["config"])
    assert app["scope"] == "rg"
    assert accessor(app["params"]["principalId"]) == "identity.outputs.principalId"
    assert accessor(app["params"]["deadLetterPrincipalId"]) == "eventGridIdentity.outputs.principalId"
    assert accessor(app["params"]["appStorageAccountName"]) == "storage.outputs.name"
    assert app["params"]["deadLetterContainerName"] == "deadLetterContainerName"
    assert accessor(app["params"]["applicationInsightsName"]) == "monitoring.outputs.applicationInsightsName"
    assert app["params"]["mdcWriterPrincipalId"]["operator"]["operands"]["true_value"] == "mdcWriterPrincipalId"
    assert accessor(app["params"]["mdcStorageAccountName"]["operator"]["operands"]["true_value"]) == (
        "mdcSink.outputs.name"
    )

    mdc_config = rbac["rbacMdc"]["config"]
    assert condition(mdc_config) == {"operator": {"type": "and", "operands": {
        "operand_1": "assignMdcStorageRole",
        "operand_2": {"operator": {"type": "not", "operands": {"bool_value": "deployMdcSink"}}}}}}
    mdc = unwrap(mdc_config)
    assert mdc["scope"]["function"]["parameters"] == {
        "subscription_id": "mdcSubscriptionId",
        "resource_group_name": "mdcRgName",
    }
    assert mdc["params"] == {
        "principalId": mdc["params"]["principalId"],
        "mdcStorageAccountName": "mdcStorageAccountName",
    }
    assert accessor(mdc["params"]["principalId"]) == "identity.outputs.principalId"

    openai = rbac["rbacOpenAi"]["config"]
    assert condition(openai) == "useExistingOpenAi"
    openai = unwrap(openai)
    assert openai["scope"]["function"]["parameters"]["resource_group_name"] == "existingOpenAiRgName"
    assert openai["params"]["openAiAccountName"] == "existingOpenAiAccountName"
    assert accessor(openai["params"]["principalId"]) == "identity.outputs.principalId"


def test_role_on_a_new_openai_account_depends_on_the_account() -> None:
    """A plain name would let the assignment start before the account exists; the module output is
    an implicit dependency."""
    app = unwrap(module("main.bicep", "rbacApp")["config"])
    name = app["params"]["openAiAccountName"]["operator"]
    assert name["type"] == "conditional"
    assert name["operands"]["condition"] == "createOpenAi"
    assert accessor(name["operands"]["true_value"]) == "openAi.outputs.name"
    assert name["operands"]["false_value"] == ""
    assert "newOpenAiName" not in strings(app["params"])
    assert parse("app/openai.bicep")["outputs"]["name"]["value"] is not None


def test_workspace_account_role_is_optional_with_a_manual_command() -> None:
    params = parse("main.bicep")["parameters"]
    assert params["assignMdcStorageRole"]["default"] is True
    assert params["mdcStorageSubscriptionId"]["default"] == ""
    outputs = parse("main.bicep")["outputs"]
    manual = outputs["MDC_MANUAL_ROLE_ASSIGNMENT"]["value"]["operator"]["operands"]
    assert manual["true_value"] == ""
    command = manual["false_value"]
    for needle in ("az role assignment create", "${identity.outputs.principalId}", "Storage Blob Data Reader",
                   "${watchedAccountId}"):
        assert needle in command
    variables = parse("main.bicep")["variables"]
    account_id = variables["watchedAccountId"]["value"]
    assert "${watchedSubscriptionId}" in account_id and "${watchedResourceGroupName}" in account_id
    # The existing workspace account is looked up in its own subscription.
    scope = unwrap(resource("main.bicep", "mdcStorage")["config"])["scope"]["function"]["parameters"]
    assert scope == {"subscription_id": "mdcSubscriptionId", "resource_group_name": "mdcRgName"}


def test_dedicated_mdc_sink_is_watched_and_explained() -> None:
    main = parse("main.bicep")
    assert main["parameters"]["deployMdcSink"]["default"] is False
    sink = main["modules"]["mdcSink"]
    assert sink["detail"]["path"] == "app/storage.bicep"
    assert condition(sink["config"]) == "deployMdcSink"
    assert unwrap(sink["config"])["params"]["containerNames"] == ["mdcSinkContainerName"]
    variables = main["variables"]
    endpoint = variables["watchedBlobEndpoint"]["value"]["operator"]["operands"]
    assert accessor(endpoint["true_value"]) == "mdcSink.outputs.blobEndpoint"
    assert accessor(endpoint["false_value"]) == "mdcStorage.properties.primaryEndpoints.blob"
    params = module("main.bicep", "functionApp")["config"]["params"]
    assert params["mdcBlobEndpoint"] == "watchedBlobEndpoint"
    assert params["mdcContainerName"] == "watchedContainerName"
    outputs = main["outputs"]
    collector = outputs["MDC_DATA_COLLECTOR_YAML"]["value"]["operator"]["operands"]["true_value"]
    for needle in ("data_collector:", "model_inputs:", "model_outputs:",
                   "path: azureml://datastores/${mdcSinkDatastoreName}/paths/modelDataCollector/"
                   "${mlEndpointName}/${mlDeploymentName}/model_inputs"):
        assert needle in collector, needle
    datastore = outputs["MDC_DATASTORE_YAML"]["value"]["operator"]["operands"]["true_value"]
    assert "account_name: ${sinkName}" in datastore and "container_name: ${mdcSinkContainerName}" in datastore
    assert "credentials" not in datastore, "identity-based datastore: no key or SAS"
    writer = outputs["MDC_SINK_WRITER_ROLE_ASSIGNMENT"]["value"]["operator"]["operands"]["true_value"]
    assert "Storage Blob Data Contributor" in writer


# ---------------------------------------------------------------- Event Grid


def test_event_grid_subscription_filter_and_webhook() -> None:
    sub = body("eventgrid.bicep", "eventSubscription")
    assert sub["parent"] == "systemTopic"
    props = sub["properties"]
    flt = props["filter"]
    assert flt["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert flt["subjectBeginsWith"] == "/blobServices/default/containers/${mdcContainerName}/blobs/modelDataCollector/"
    assert flt["subjectEndsWith"] == ".jsonl"
    assert flt["advancedFilters"] == [
        {"operatorType": "StringNotContains", "key": "subject", "values": ["_block_blob/"]}
    ], "Azure ML monitoring's {collection}_block_blob copies are duplicates"
    dest = props["destination"]
    assert dest["endpointType"] == "WebHook"
    assert dest["properties"]["endpointUrl"] == (
        "https://${functionAppHostName}/runtime/webhooks/blobs"
        "?functionName=Host.Functions.${functionName}&code=${uriComponent(blobExtensionKey)}"
    )
    params = parse("eventgrid.bicep")["parameters"]
    assert params["functionName"]["default"] == "ingest_blob"
    assert props["retryPolicy"] == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    assert params["maxDeliveryAttempts"]["default"] >= 1
    assert params["eventTimeToLiveInMinutes"]["default"] >= 60


def test_event_grid_dead_letter_with_identity() -> None:
    props = body("eventgrid.bicep", "eventSubscription")["properties"]
    assert "deadLetterDestination" not in props, "dead-letter with an identity: the account has no shared keys"
    dead = props["deadLetterWithResourceIdentity"]
    assert dead["identity"] == {"type": "UserAssigned", "userAssignedIdentity": "deadLetterIdentityId"}
    assert dead["deadLetterDestination"] == {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": "deadLetterStorageAccountId", "blobContainerName": "deadLetterContainerName"},
    }
    topic = body("eventgrid.bicep", "systemTopic")
    assert topic["identity"]["userAssignedIdentities"] == "topicIdentities"
    union = parse("eventgrid.bicep")["variables"]["topicIdentities"]["value"]["function"]
    assert union["type"] == "union"
    assert list(union["parameters"]["arg_2"]) == ["'${deadLetterIdentityId}'"]
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert accessor(topic["properties"]["source"]) == "mdcStorage.id"
    assert accessor(topic["location"]) == "mdcStorage.location"
    assert resource("eventgrid.bicep", "mdcStorage")["existing"] is True
    assert parse("eventgrid.bicep")["parameters"]["systemTopicName"]["default"] is None


def test_reused_system_topic_keeps_its_identities_and_tags() -> None:
    """The workspace account's only system topic may serve other subscriptions: a PUT that replaced
    its identity would break their delivery or dead-lettering, and its tags belong to its owner."""
    template = parse("eventgrid.bicep")
    params = template["parameters"]
    assert params["reuseExistingTopic"]["default"] is False
    assert params["existingTopicUserAssignedIdentities"]["default"] == {}
    assert params["existingTopicTags"]["default"] == {}
    topic = body("eventgrid.bicep", "systemTopic")
    tags = topic["tags"]["operator"]["operands"]
    assert tags == {"condition": "reuseExistingTopic", "true_value": "existingTopicTags", "false_value": "tags"}
    kind = topic["identity"]["type"]["operator"]["operands"]
    assert kind == {"condition": "keepSystemIdentity", "true_value": "SystemAssigned, UserAssigned",
                    "false_value": "UserAssigned"}
    keep = strings(template["variables"]["keepSystemIdentity"]["value"])
    assert "reuseExistingTopic" in keep and "existingTopicIdentityType" in keep and "systemassigned" in keep
    union = template["variables"]["topicIdentities"]["value"]["function"]["parameters"]["arg_1"]
    assert union["operator"]["operands"] == {"condition": "reuseExistingTopic",
                                             "true_value": "existingTopicUserAssignedIdentities", "false_value": {}}
    script = (REPO / "scripts" / "postdeploy.sh").read_text(encoding="utf-8")
    for name in ("reuseExistingTopic", "existingTopicIdentityType", "existingTopicUserAssignedIdentities",
                 "existingTopicTags"):
        assert f'"{name}"' in script, f"postdeploy.sh does not pass {name}"


# ---------------------------------------------------------------- alerts


def test_quality_alert_rule_notifies_the_action_group() -> None:
    alerts = "app/alerts.bicep"
    group = body(alerts, "actionGroup")
    assert group["location"] == "Global"
    receivers = group["properties"]["emailReceivers"]
    assert receivers["loop_type"]["detail"]["array_name"] == "emailReceivers"
    assert receivers["config"]["emailAddress"] == receivers["loop_type"]["detail"]["item_name"]
    assert parse(alerts)["parameters"]["emailReceivers"]["type"] == "array"

    rule_res = resource(alerts, "qualityAlertRule")
    assert rule_res["type"] == "Microsoft.Insights/scheduledQueryRules"
    rule = body(alerts, "qualityAlertRule")
    assert rule["kind"] == "LogAlert"
    props = rule["properties"]
    assert props["scopes"] == ["applicationInsightsId"]
    assert props["enabled"] is True
    (criterion,) = props["criteria"]["allOf"]
    query = parse(alerts)["variables"]["query"]["value"]
    assert criterion["query"] == "query"
    assert re.match(r'^customEvents \| where name == "QualityAlert"', query)
    assert {d["name"] for d in criterion["dimensions"]} == {"monitor", "metric", "segment", "kind"}
    assert criterion["operator"] == "GreaterThan"
    assert criterion["threshold"] == 0
    assert [accessor(a) for a in props["actions"]["actionGroups"]] == ["actionGroup.id"]

    params = unwrap(module("main.bicep", "alerts")["config"])["params"]
    assert accessor(params["applicationInsightsId"]) == "monitoring.outputs.applicationInsightsId"
    assert params["emailReceivers"] == "alertEmailList"


# ---------------------------------------------------------------- outputs, parameters, azd


def test_outputs_for_azd_and_postdeploy() -> None:
    outputs = parse("main.bicep")["outputs"]
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in outputs)
    script = (REPO / "scripts" / "postdeploy.sh").read_text(encoding="utf-8")
    required = re.search(r"for name in ([^;]+);", script)
    assert required, "postdeploy.sh lists its required variables in a `for name in ...; do` loop"
    needed = set(required.group(1).replace("\\", " ").split())
    needed |= {"AZURE_FUNCTION_APP_HOSTNAME", "EVENTGRID_SYSTEM_TOPIC_NAME"}
    assert needed <= set(outputs), f"outputs missing for postdeploy.sh: {sorted(needed - set(outputs))}"
    assert {"AZURE_FUNCTION_APP_NAME", "AZURE_RESOURCE_GROUP", "AZURE_OPENAI_ENDPOINT"} <= set(outputs)


def test_parameters_file_matches_main() -> None:
    declared = parse("main.bicep")["parameters"]
    given = main_parameters()["parameters"]
    assert set(given) <= set(declared), f"unknown parameters: {sorted(set(given) - set(declared))}"
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(given), f"required parameters without a value: {sorted(required - set(given))}"
    for name, spec in given.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", spec["value"]), f"{name}: use azd ${{VAR}} syntax"
    assert given["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert given["location"]["value"] == "${AZURE_LOCATION}"


def test_azure_yaml_postdeploy_hook() -> None:
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    hook = azure_yaml["hooks"]["postdeploy"]
    assert "scripts/postdeploy.sh" in hook["run"]
    assert hook.get("continueOnError", False) is False
    assert azure_yaml["infra"]["path"] == "infra"


# ---------------------------------------------------------------- cross-check with the function code


def _function_sources() -> list[Path]:
    files = [REPO / "function_app.py", *sorted((REPO / "monitor" / "functions").glob("*.py"))]
    return [f for f in files if f.is_file()]


def test_binding_settings_match_function_code() -> None:
    sources = _function_sources()
    if not (REPO / "function_app.py").is_file():
        pytest.skip("function_app.py is not in the tree yet: nothing to cross-check the app settings against")
    text = "\n".join(f.read_text(encoding="utf-8") for f in sources)
    connections = set(re.findall(r"""\bconnection\s*=\s*["']([^"']+)["']""", text))
    percent = set(re.findall(r"""\b(?:schedule|queue_name|path)\s*=\s*["'][^"']*%([A-Za-z_][A-Za-z0-9_]*)%""", text))
    settings = app_settings()

    assert connections == {"MONITOR_STORAGE", "MDC_STORAGE"}, f"connection settings in code: {sorted(connections)}"
    for name in connections:
        assert f"{name}__credential" in settings and f"{name}__blobServiceUri" in settings, name
    assert {"AGGREGATION_SCHEDULE", "TAIL_SCHEDULE", "EVALUATION_QUEUE", "MDC_CONTAINER"} <= percent, sorted(percent)
    for name in percent:
        assert name in settings, f"%{name}% is bound in code but not set in {FUNCTION}"
    assert re.search(r"""source\s*=\s*func\.BlobSource\.EVENT_GRID|source\s*=\s*["']EventGrid["']""", text)
    assert re.search(r"\bingest_blob\b", text), "the Event Grid webhook targets Host.Functions.ingest_blob"


def test_deploy_doc_covers_the_steps() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    for needle in (
        "azd up",
        "az deployment sub create",
        "scripts/postdeploy.sh",
        "infra/eventgrid.bicep",
        "blobs_extension",
        "/api/monitors/contoso-chat?code=",
        "No keys to rotate",
        "azd down",
        "az bicep build",
        "what-if",
        "an Azure ML managed online endpoint with data collection",
        "Manual steps, and why they are manual",
        "MDC_MANUAL_ROLE_ASSIGNMENT",
        "MDC_DATASTORE_YAML",
        "MDC_DATA_COLLECTOR_YAML",
        "MDC_SINK_WRITER_ROLE_ASSIGNMENT",
        "MDC_STORAGE_SUBSCRIPTION_ID",
        "Data Lake (DFS) endpoint",
        "_block_blob/",
        "An event lost is a delay, not data loss",
        "`ingest_blob` and reports no error",
        "MDC_STORAGE__queueServiceUri",
        "WEBSITE_INSTANCE_ID",
        "make lock",
        "requirements-local",
        "make smoke",
        "Smoke test: prove the deployed monitor end to end",
        "tests/support/triggers.py",
    ):
        assert needle in doc, f"docs/deploy.md does not mention {needle!r}"
