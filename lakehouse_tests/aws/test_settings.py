"""aws-mode settings: one switch, derived default names, validation that names the variables to fix."""

from __future__ import annotations

import pytest

from lakehouse.environment import resources_for
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.settings import Settings, SettingsError, load_settings
from lakehouse.sources.landing import LandingZoneResource

AWS = {"LAKEHOUSE_ENV": "aws", "LAKEHOUSE_AWS_REGION": "eu-west-1", "LAKEHOUSE_LANDING": "s3://acme-landing/incoming/"}


@pytest.fixture
def env(monkeypatch):
    def set_env(**variables):
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_env


def test_defaults_derive_bucket_and_database_names_from_the_environment_name(env):
    env(**AWS, LAKEHOUSE_ENVIRONMENT_NAME="prod-eu")
    settings = load_settings()
    assert [settings.bucket(layer) for layer in ("bronze", "silver", "gold", "artifacts")] == [
        "lakehouse-bronze-prod-eu", "lakehouse-silver-prod-eu", "lakehouse-gold-prod-eu", "lakehouse-artifacts-prod-eu",
    ]
    assert [settings.glue_database(layer) for layer in ("bronze", "silver", "gold")] == [
        "lakehouse_bronze_prod_eu", "lakehouse_silver_prod_eu", "lakehouse_gold_prod_eu",
    ]
    assert settings.layer_location("silver") == "s3://lakehouse-silver-prod-eu/silver"
    assert settings.landing_root == "s3://acme-landing/incoming"
    assert settings.s3_endpoint is None and settings.glue_endpoint is None


def test_explicit_names_and_endpoints_win(env):
    env(
        **AWS, LAKEHOUSE_SILVER_BUCKET="acme-silver", LAKEHOUSE_GLUE_DATABASE_GOLD="acme_gold",
        LAKEHOUSE_AWS_ENDPOINT_URL="http://127.0.0.1:5000/", LAKEHOUSE_GLUE_ENDPOINT_URL="https://glue.eu-west-1.amazonaws.com",
    )
    settings = load_settings()
    assert settings.bucket("silver") == "acme-silver" and settings.bucket("gold") == "lakehouse-gold-dev"
    assert settings.glue_database("gold") == "acme_gold"
    assert settings.s3_endpoint == "http://127.0.0.1:5000"
    assert settings.glue_endpoint == "https://glue.eu-west-1.amazonaws.com"


def test_missing_required_settings_give_one_error_naming_every_variable(env):
    env(LAKEHOUSE_ENV="aws")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "LAKEHOUSE_AWS_REGION" in message and "LAKEHOUSE_LANDING" in message
    assert message.count("invalid lakehouse settings") == 1


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LAKEHOUSE_AWS_REGION", "Ireland", "not an AWS region code"),
        ("LAKEHOUSE_SILVER_BUCKET", "Acme_Silver", "not a valid S3 bucket name"),
        ("LAKEHOUSE_GLUE_DATABASE_BRONZE", "lakehouse-bronze", "not a usable Glue database name"),
        ("LAKEHOUSE_AWS_ENDPOINT_URL", "127.0.0.1:5000", "not an endpoint URL"),
        ("LAKEHOUSE_LANDING", "/data/landing", "must be an s3://bucket/prefix"),
        ("LAKEHOUSE_ENVIRONMENT_NAME", "Prod EU", "not a usable environment name"),
        ("LAKEHOUSE_ENVIRONMENT_NAME", "a-rather-long-environment-name-xyz", "not a usable environment name"),
        ("LAKEHOUSE_ENV", "gcp", "LAKEHOUSE_ENV"),
    ],
)
def test_invalid_values_are_refused_naming_the_variable(env, variable, value, says):
    env(**{**AWS, variable: value})
    with pytest.raises(SettingsError, match=says) as info:
        load_settings()
    if variable != "LAKEHOUSE_LANDING":
        assert variable in str(info.value)


def test_aws_fields_are_ignored_in_local_mode(env, tmp_path):
    env(LAKEHOUSE_AWS_REGION="eu-west-1", LAKEHOUSE_SILVER_BUCKET="acme-silver")
    settings = load_settings()
    assert settings.env == "local"
    assert resources_for(settings)["store"].catalog_properties["type"] == "sql"


def test_both_environments_give_the_same_resource_keys(env, tmp_path):
    local = resources_for(Settings(home=tmp_path / "lh"))
    env(**AWS, LAKEHOUSE_AWS_ENDPOINT_URL="http://127.0.0.1:1")
    aws = resources_for(load_settings())
    common = {"store", "landing", "spark", "compute", "compute_local", "partitions", "lakehouse_io_manager", "dbt", "table_writer"}
    # Only the engines a transformation may pin itself to differ: Glue (and EMR once set up) need aws mode.
    assert set(local) == common and set(aws) == common | {"compute_glue"}
    store, landing = aws["store"], aws["landing"]
    assert isinstance(store, TableStoreResource) and isinstance(landing, LandingZoneResource)
    assert store.catalog_properties == {
        "type": "glue", "glue.region": "eu-west-1", "client.region": "eu-west-1", "s3.region": "eu-west-1",
        "glue.endpoint": "http://127.0.0.1:1", "s3.endpoint": "http://127.0.0.1:1",
    }
    assert store.locations == {layer: f"s3://lakehouse-{layer}-dev/{layer}" for layer in ("bronze", "silver", "gold")}
    assert store.namespaces == {layer: f"lakehouse_{layer}_dev" for layer in ("bronze", "silver", "gold")}
    assert (landing.root, landing.region, landing.endpoint_url) == ("s3://acme-landing/incoming", "eu-west-1", "http://127.0.0.1:1")
    # Nothing secret in the configuration: credentials come from the standard chain at run time.
    assert not any("key" in k or "secret" in k or "token" in k for k in store.catalog_properties)


def test_building_definitions_in_aws_mode_needs_no_aws_access(env):
    """The code location loads (e.g. `dagster definitions validate` in CI) without reaching AWS:
    buckets and databases are checked on first use."""
    from lakehouse.definitions import build_definitions

    env(**AWS, LAKEHOUSE_AWS_ENDPOINT_URL="http://127.0.0.1:1")
    defs = build_definitions()
    assert defs.resources["store"].catalog_properties["type"] == "glue"
