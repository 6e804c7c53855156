select
    cast(created_at as date) as report_date,
    status,
    count(*) as orders,
    cast(sum(amount) as decimal(18, 2)) as revenue
from {{ source('silver', 'orders') }}
group by cast(created_at as date), status
