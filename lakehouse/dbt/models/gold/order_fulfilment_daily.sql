select
    report_date,
    cast(sum(orders) as bigint) as orders,
    cast(sum(case when status = 'delivered' then orders else 0 end) as bigint) as delivered_orders,
    cast(sum(case when status = 'cancelled' then orders else 0 end) as bigint) as cancelled_orders,
    cast(sum(case when status = 'cancelled' then orders else 0 end) as double) / cast(sum(orders) as double) as cancel_rate
from {{ ref('order_status_daily') }}
group by report_date
