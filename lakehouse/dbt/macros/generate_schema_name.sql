{#- A model's schema is the layer it declares (gold), not dbt's "<target schema>_gold": the models
    land in the same namespace as the Python-built Gold tables. On Athena the target schema is the
    Gold Glue database itself. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if target.type == 'athena' or custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
