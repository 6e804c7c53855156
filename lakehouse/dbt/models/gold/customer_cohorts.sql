with orders as (
    select
        customer_id,
        status,
        amount,
        cast(date_trunc('month', created_at) as date) as order_month
    from {{ source('silver', 'orders') }}
),

cohorts as (
    select customer_id, min(order_month) as cohort_month
    from orders
    group by customer_id
),

known as (
    select distinct customer_id from {{ source('silver', 'customers') }}
)

select
    cohorts.cohort_month,
    orders.order_month,
    cast(date_diff('month', cohorts.cohort_month, orders.order_month) as bigint) as months_since_first,
    count(distinct orders.customer_id) as active_customers,
    count(distinct known.customer_id) as known_customers,
    count(*) as orders,
    cast(coalesce(sum(case when orders.status <> 'cancelled' then orders.amount end), 0) as decimal(18, 2)) as revenue
from orders
join cohorts on cohorts.customer_id = orders.customer_id
left join known on known.customer_id = orders.customer_id
group by cohorts.cohort_month, orders.order_month
