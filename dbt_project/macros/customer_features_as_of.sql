{#- Every customer feature for every as_of date in dates_relation (a relation, or a parenthesised
    select, with a DATE column as_of_date), set-based. Daily scoring (customer_features) and the
    training snapshots (customer_feature_snapshots) both call this, so they share definitions.

    Point in time: facts join on activity_date < as_of_date over daily pre-aggregates
    (int_customer_*_daily), so a row for D only sees data before D 00:00 UTC; _max_source_at
    records the latest source timestamp a row used and is tested to be < as_of_date.
    Windows: "last N days" = the N UTC days before as_of (days_ago 1..N). Orders and revenue count
    completed orders only. Trend ratios compare the last 90 days with the 365-day rate scaled to
    90 days: (x_90d + 1) / (x_365d * 90 / 365 + 1); above 1 = speeding up. -#}
{% macro customer_features_as_of(dates_relation, customers_relation=none) -%}
{#- customers_relation (optional): a relation or parenthesised select with a customer_id column;
    only those customers get rows (the training snapshots' sample). -#}
{%- set categories = feature_categories() -%}
with
{%- if customers_relation is not none %}
listed_customers as (
    select customer_id from {{ customers_relation }} as customers_input
),
{% endif %}
as_of_dates as (
    select distinct cast(as_of_date as date) as as_of_date
    from {{ dates_relation }} as as_of_input
),

population as (
    select
        as_of_dates.as_of_date,
        customers.customer_id,
        customers.country,
        customers.is_email_opt_in,
        customers.is_sms_opt_in,
        customers.created_at
    from as_of_dates
    -- The customer's state (consent, country) in effect at each date, not today's.
    inner join {{ ref('dim_customers_history') }} as customers
        on {{ customer_version_at('as_of_dates.as_of_date', 'customers') }}
        and customers.created_at < cast(as_of_dates.as_of_date as timestamp)
        {{- only_listed(customers_relation, 'customers') }}
),

order_days as (
    select
        as_of_dates.as_of_date,
        {{ dbt.datediff('orders.activity_date', 'as_of_dates.as_of_date', 'day') }} as days_ago,
        orders.*
    from as_of_dates
    inner join {{ ref('int_customer_orders_daily') }} as orders
        on orders.activity_date < as_of_dates.as_of_date
        {{- only_listed(customers_relation, 'orders') }}
),

order_features as (
    select
        as_of_date,
        customer_id,
        {%- for n in [30, 90, 365] %}
        sum(case when days_ago <= {{ n }} then completed_orders else 0 end) as orders_{{ n }}d,
        sum(case when days_ago <= {{ n }} then completed_revenue else 0 end) as revenue_{{ n }}d,
        {%- endfor %}
        sum(completed_orders) as orders_total,
        sum(completed_revenue) as revenue_total,
        min(first_completed_at) as first_order_at,
        max(last_completed_at) as last_completed_order_at,
        max(last_order_at) as last_order_at,
        {%- for c in categories %}
        sum(items_{{ c }}) as items_{{ c }},
        sum(item_revenue_{{ c }}) as item_revenue_{{ c }},
        {%- endfor %}
        sum(item_revenue) as item_revenue
    from order_days
    group by 1, 2
),

event_days as (
    select
        as_of_dates.as_of_date,
        {{ dbt.datediff('events.activity_date', 'as_of_dates.as_of_date', 'day') }} as days_ago,
        events.*
    from as_of_dates
    inner join {{ ref('int_customer_events_daily') }} as events
        on events.activity_date < as_of_dates.as_of_date
        {{- only_listed(customers_relation, 'events') }}
),

event_features as (
    select
        as_of_date,
        customer_id,
        sum(case when days_ago <= 7 then events else 0 end) as events_7d,
        sum(case when days_ago <= 30 then events else 0 end) as events_30d,
        sum(case when days_ago <= 30 then page_views else 0 end) as page_views_30d,
        sum(case when days_ago <= 30 then product_views else 0 end) as product_views_30d,
        sum(case when days_ago <= 30 then searches else 0 end) as searches_30d,
        sum(case when days_ago <= 30 then app_opens else 0 end) as app_opens_30d,
        sum(case when days_ago <= 30 then add_to_carts else 0 end) as add_to_cart_30d,
        {%- for c in categories %}
        sum(case when days_ago <= 30 then product_views_{{ c }} else 0 end) as product_views_30d_{{ c }},
        {%- endfor %}
        max(last_event_at) as last_event_at,
        max(last_app_open_at) as last_app_open_at,
        max(case when days_ago = 1 then abandoned_cart_days else 0 end) as abandoned_cart_1d,
        sum(case when days_ago <= 30 then cart_days else 0 end) as cart_days_30d,
        sum(case when days_ago <= 30 then abandoned_cart_days else 0 end) as abandoned_cart_days_30d
    from event_days
    group by 1, 2
),

response_days as (
    select
        as_of_dates.as_of_date,
        {{ dbt.datediff('responses.activity_date', 'as_of_dates.as_of_date', 'day') }} as days_ago,
        responses.*
    from as_of_dates
    inner join {{ ref('int_customer_responses_daily') }} as responses
        on responses.activity_date < as_of_dates.as_of_date
        {{- only_listed(customers_relation, 'responses') }}
),

response_features as (
    select
        as_of_date,
        customer_id,
        sum(case when days_ago <= 90 then delivered else 0 end) as messages_received_90d,
        sum(case when days_ago <= 90 then opens else 0 end) as opens_90d,
        sum(case when days_ago <= 90 then clicks else 0 end) as clicks_90d,
        sum(case when days_ago <= 90 then conversions else 0 end) as conversions_90d,
        sum(opens + clicks + conversions) as responses_total,
        sum(unsubscribes) as unsubscribes_total,
        sum(bounces) as bounces_total,
        sum(spam_reports) as spam_reports_total,
        max(last_response_at) as last_response_at,
        max(last_message_event_at) as last_message_event_at
    from response_days
    group by 1, 2
),

-- Whether each optional source has data before the date (see int_sources_provided).
provided as (
    select
        as_of_dates.as_of_date,
        {%- for s in ['order_items', 'events', 'campaign_responses'] %}
        coalesce(sources.first_{{ s }}_date < as_of_dates.as_of_date, false) as is_{{ s }}_provided{{ ',' if not loop.last }}
        {%- endfor %}
    from as_of_dates
    cross join {{ ref('int_sources_provided') }} as sources
),

joined as (
    select
        population.*,
        provided.is_order_items_provided,
        provided.is_events_provided,
        provided.is_campaign_responses_provided,
        {%- for n in [30, 90, 365] %}
        coalesce(order_features.orders_{{ n }}d, 0) as orders_{{ n }}d,
        coalesce(order_features.revenue_{{ n }}d, 0) as revenue_{{ n }}d,
        {%- endfor %}
        coalesce(order_features.orders_total, 0) as orders_total,
        coalesce(order_features.revenue_total, 0) as revenue_total,
        order_features.first_order_at,
        order_features.last_completed_order_at,
        order_features.last_order_at,
        {%- for c in categories %}
        {{ _if_provided('order_items', 'coalesce(order_features.items_' ~ c ~ ', 0)') }} as items_{{ c }},
        {{ _if_provided('order_items', 'coalesce(order_features.item_revenue_' ~ c ~ ', 0)') }} as item_revenue_{{ c }},
        {%- endfor %}
        {{ _if_provided('order_items', 'coalesce(order_features.item_revenue, 0)') }} as item_revenue,
        {{ _if_provided('events', 'coalesce(event_features.events_7d, 0)') }} as events_7d,
        {{ _if_provided('events', 'coalesce(event_features.events_30d, 0)') }} as events_30d,
        {{ _if_provided('events', 'coalesce(event_features.page_views_30d, 0)') }} as page_views_30d,
        {{ _if_provided('events', 'coalesce(event_features.product_views_30d, 0)') }} as product_views_30d,
        {{ _if_provided('events', 'coalesce(event_features.searches_30d, 0)') }} as searches_30d,
        {{ _if_provided('events', 'coalesce(event_features.app_opens_30d, 0)') }} as app_opens_30d,
        {{ _if_provided('events', 'coalesce(event_features.add_to_cart_30d, 0)') }} as add_to_cart_30d,
        {%- for c in categories %}
        {{ _if_provided('events', 'coalesce(event_features.product_views_30d_' ~ c ~ ', 0)') }} as product_views_30d_{{ c }},
        {%- endfor %}
        event_features.last_event_at,
        event_features.last_app_open_at,
        {{ _if_provided('events', 'coalesce(event_features.abandoned_cart_1d, 0)') }} as abandoned_cart_1d,
        {{ _if_provided('events', 'coalesce(event_features.cart_days_30d, 0)') }} as cart_days_30d,
        {{ _if_provided('events', 'coalesce(event_features.abandoned_cart_days_30d, 0)') }} as abandoned_cart_days_30d,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.messages_received_90d, 0)') }} as messages_received_90d,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.opens_90d, 0)') }} as opens_90d,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.clicks_90d, 0)') }} as clicks_90d,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.conversions_90d, 0)') }} as conversions_90d,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.responses_total, 0)') }} as responses_total,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.unsubscribes_total, 0)') }} as unsubscribes_total,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.bounces_total, 0)') }} as bounces_total,
        {{ _if_provided('campaign_responses', 'coalesce(response_features.spam_reports_total, 0)') }} as spam_reports_total,
        response_features.last_response_at,
        response_features.last_message_event_at
    from population
    left join order_features
        on population.as_of_date = order_features.as_of_date
        and population.customer_id = order_features.customer_id
    left join event_features
        on population.as_of_date = event_features.as_of_date
        and population.customer_id = event_features.customer_id
    left join response_features
        on population.as_of_date = response_features.as_of_date
        and population.customer_id = response_features.customer_id
    inner join provided on population.as_of_date = provided.as_of_date
),

final as (
    select
        as_of_date,
        customer_id,
        country,
        is_email_opt_in,
        is_sms_opt_in,
        {{ _days_before_as_of('created_at') }} as tenure_days,
        cast(orders_30d as bigint) as orders_30d,
        cast(orders_90d as bigint) as orders_90d,
        cast(orders_365d as bigint) as orders_365d,
        cast(orders_total as bigint) as orders_total,
        cast(revenue_30d as double precision) as revenue_30d,
        cast(revenue_90d as double precision) as revenue_90d,
        cast(revenue_365d as double precision) as revenue_365d,
        cast(revenue_total as double precision) as revenue_total,
        cast(revenue_total as double precision) / nullif(orders_total, 0) as avg_order_value,
        {{ _days_before_as_of('last_completed_order_at') }} as days_since_last_order,
        {{ _days_before_as_of('first_order_at') }} as days_since_first_order,
        case
            when orders_total >= 2
            then cast({{ dbt.datediff('first_order_at', 'last_completed_order_at', 'second') }} as double precision)
                / 86400.0 / (orders_total - 1)
        end as mean_interpurchase_days,
        {#- Doubles on every engine: PostgreSQL reads 1.0 as numeric. #}
        (cast(orders_90d as double precision) + 1.0)
        / (cast(orders_365d as double precision) * 90.0 / 365.0 + 1.0) as order_trend_ratio,
        (cast(revenue_90d as double precision) + 1.0)
        / (cast(revenue_365d as double precision) * 90.0 / 365.0 + 1.0) as revenue_trend_ratio,
        {%- for c in categories %}
        cast(items_{{ c }} as bigint) as items_{{ c }},
        {%- endfor %}
        {%- for c in categories %}
        {{ _if_provided('order_items', 'coalesce(cast(item_revenue_' ~ c ~ ' as double precision) / nullif(item_revenue, 0), 0)') }} as share_{{ c }},
        {%- endfor %}
        {{ _argmax_category(categories, 'item_revenue_') }} as top_category,
        cast(events_7d as bigint) as events_7d,
        cast(events_30d as bigint) as events_30d,
        cast(page_views_30d as bigint) as page_views_30d,
        cast(product_views_30d as bigint) as product_views_30d,
        cast(searches_30d as bigint) as searches_30d,
        cast(app_opens_30d as bigint) as app_opens_30d,
        cast(add_to_cart_30d as bigint) as add_to_cart_30d,
        {{ _days_before_as_of('last_event_at') }} as days_since_last_event,
        {{ _days_before_as_of('last_app_open_at') }} as days_since_last_app_open,
        {{ _argmax_category(categories, 'product_views_30d_') }} as top_viewed_category_30d,
        abandoned_cart_1d > 0 as is_cart_abandoned_24h,
        cast(abandoned_cart_days_30d as double precision) / nullif(cart_days_30d, 0) as cart_abandonment_rate_30d,
        cast(messages_received_90d as bigint) as messages_received_90d,
        cast(opens_90d as bigint) as opens_90d,
        cast(clicks_90d as bigint) as clicks_90d,
        cast(conversions_90d as bigint) as conversions_90d,
        responses_total > 0 as has_ever_responded,
        {{ _days_before_as_of('last_response_at') }} as days_since_last_response,
        unsubscribes_total > 0 as is_unsubscribed,
        bounces_total > 0 as is_bounced,
        spam_reports_total > 0 as is_spam_reported,
        -- created_at is never NULL here, so it stands in for absent facts
        greatest(
            created_at,
            coalesce(last_order_at, created_at),
            coalesce(last_event_at, created_at),
            coalesce(last_message_event_at, created_at)
        ) as _max_source_at
    from joined
)

select * from final
{%- endmacro %}

{#- The expression when the optional source (order_items, events, campaign_responses) has data
    before the row's as_of_date, else NULL: a feature of a source the shop does not have is
    unknown, not 0. Needs the is_<source>_provided columns of the provided CTE in scope. -#}
{% macro _if_provided(source_name, expression) -%}
    case when is_{{ source_name }}_provided then {{ expression }} end
{%- endmacro %}

{#- "and <alias>.customer_id is listed" when customers_relation restricts the customers. -#}
{% macro only_listed(customers_relation, alias) -%}
    {%- if customers_relation is not none %}
        and {{ alias }}.customer_id in (select customer_id from listed_customers)
    {%- endif -%}
{%- endmacro %}

{#- Whole UTC days from a timestamp's date to as_of_date (NULL stays NULL). -#}
{% macro _days_before_as_of(column) -%}
    cast({{ dbt.datediff('cast(' ~ column ~ ' as date)', 'as_of_date', 'day') }} as integer)
{%- endmacro %}

{#- The category whose column <prefix><category> is largest; NULL when all are 0. Ties go to
    the category listed first in var categories (the first matching branch wins). -#}
{% macro _argmax_category(categories, prefix) -%}
    case
        {%- for c in categories %}
        when {{ prefix }}{{ c }} > 0
            {%- for other in categories if other != c %}
            and {{ prefix }}{{ c }} >= {{ prefix }}{{ other }}
            {%- endfor %}
        then '{{ c }}'
        {%- endfor %}
    end
{%- endmacro %}

