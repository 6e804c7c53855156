{#- Reconciliation: the sum of ``column_name`` over the model equals the sum of ``to_column`` over
    ``to`` (where ``to_where`` holds): an aggregate that loses or doubles rows fails it. -#}
{% test total_matches(model, column_name, to, to_column, to_where='1 = 1') %}
with model_total as (
    select coalesce(sum({{ column_name }}), 0) as total from {{ model }}
),
source_total as (
    select coalesce(sum({{ to_column }}), 0) as total from {{ to }} where {{ to_where }}
)
select model_total.total as model_total, source_total.total as source_total
from model_total cross join source_total
where model_total.total <> source_total.total
{% endtest %}
