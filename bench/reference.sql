-- Reference implementation of shared/spec/audiences.md in one DuckDB query.
--
-- Reads the views src_tracks / src_identifies (normalised column types, made by reference.py),
-- and the macro ref_num (JSON value -> number or null). Parameters (prepared, named):
--   $as_of (TIMESTAMP, UTC), $event_names / $event_kinds (VARCHAR[], the name -> kind seed),
--   $recent_purchase_days, $cart_window_hours, $high_aov_threshold, $once_min_days,
--   $once_max_days, $lapsed_days, $ltv_high_threshold, $ltv_mid_threshold.
-- Produces one row per person (any user_id with a track event at or before T), state nullable.
with

params as (
    select
        cast($as_of as timestamp) as as_of,
        cast($as_of as timestamp)
        - to_microseconds(cast(round($recent_purchase_days * 86400e6) as bigint))
            as recent_purchase_after,
        cast($as_of as timestamp)
        - to_microseconds(cast(round($cart_window_hours * 3600e6) as bigint)) as cart_after,
        cast($as_of as timestamp)
        - to_microseconds(cast(round($once_max_days * 86400e6) as bigint)) as once_from,
        cast($as_of as timestamp)
        - to_microseconds(cast(round($once_min_days * 86400e6) as bigint)) as once_to,
        cast($as_of as timestamp)
        - to_microseconds(cast(round($lapsed_days * 86400e6) as bigint)) as lapsed_to,
        cast($high_aov_threshold as double) as high_aov_threshold,
        cast($ltv_high_threshold as double) as ltv_high_threshold,
        cast($ltv_mid_threshold as double) as ltv_mid_threshold
),

event_kinds as (
    select
        unnest(cast($event_names as varchar[])) as event_name,
        unnest(cast($event_kinds as varchar[])) as kind
),

-- de-duplicate on message id, keeping the earliest received_at (before anything else). Only
-- ids delivered more than once (~1%) go through the window; the rest pass straight through.
tracks_duplicated_ids as (
    select id
    from src_tracks
    group by id
    having count(*) > 1
),

tracks_deduped as (
    select *
    from src_tracks
    anti join tracks_duplicated_ids using (id)
    union all
    select *
    from (select * from src_tracks semi join tracks_duplicated_ids using (id))
    qualify row_number() over (
        partition by id
        order by received_at, "timestamp" nulls last, event_text, event, properties
    ) = 1
),

identifies_duplicated_ids as (
    select id
    from src_identifies
    group by id
    having count(*) > 1
),

identifies_deduped as (
    select *
    from src_identifies
    anti join identifies_duplicated_ids using (id)
    union all
    select *
    from (select * from src_identifies semi join identifies_duplicated_ids using (id))
    qualify row_number() over (
        partition by id
        order by received_at, "timestamp" nulls last, traits
    ) = 1
),

-- identifies rows that happened by T
identifies_at_t as (
    select
        i.id,
        i.received_at,
        coalesce(i."timestamp", i.received_at) as event_at,
        nullif(i.user_id, '') as user_id,
        nullif(i.anonymous_id, '') as anonymous_id,
        case when json_valid(i.traits) then i.traits end as traits
    from identifies_deduped as i, params as p
    where coalesce(i."timestamp", i.received_at) <= p.as_of
),

-- anonymous_id -> user_id of the latest linking identify as of T
anonymous_links as (
    select
        anonymous_id,
        arg_max(user_id, (event_at, received_at, id)) as user_id
    from identifies_at_t
    where anonymous_id is not null and user_id is not null
    group by anonymous_id
),

-- latest non-empty email per user_id, then normalised, validated and hashed
latest_emails as (
    select
        user_id,
        arg_max(email, (event_at, received_at, id)) as email
    from (
        select
            user_id,
            event_at,
            received_at,
            id,
            -- Unicode whitespace (audiences.md): White_Space + U+200B, U+FEFF
            trim(
                traits ->> '$.email',
                chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(32) || chr(133) || chr(160)
                || chr(5760) || chr(8192) || chr(8193) || chr(8194) || chr(8195) || chr(8196) || chr(8197) || chr(8198)
                || chr(8199) || chr(8200) || chr(8201) || chr(8202) || chr(8203) || chr(8232) || chr(8233) || chr(8239)
                || chr(8287) || chr(12288) || chr(65279)
            ) as email
        from identifies_at_t
        where user_id is not null
    )
    where email <> ''
    group by user_id
),

person_emails as (
    select
        user_id as person_id,
        case
            when regexp_full_match(lower(email), '[0-9a-f]{64}') then lower(email)
            when not regexp_matches(
                    email, '[\s\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200B}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}]'
                )
                and regexp_full_match(lower(email), '[^@]+@[^@]+\.[^@]+')
                then sha256(lower(email))
        end as email_sha256
    from latest_emails
),

-- event name: event_text, else event; normalised; mapped to a kind by the seed. Worked out
-- once per distinct raw name.
event_name_kinds as (
    select
        n.raw_name,
        k.kind
    from (
        select distinct coalesce(nullif(event_text, ''), event) as raw_name
        from src_tracks
    ) as n
    inner join event_kinds as k
        on k.event_name = trim(regexp_replace(lower(n.raw_name), '[^a-z0-9]+', '_', 'g'), '_')
),

-- track events that happened by T, stitched to a person, with their kind (null: unmapped)
events as (
    select
        t.id,
        t.received_at,
        coalesce(t."timestamp", t.received_at) as event_at,
        coalesce(nullif(t.user_id, ''), l.user_id) as person_id,
        n.kind,
        case when n.kind is not null then t.properties end as properties
    from tracks_deduped as t
    cross join params as p
    left join event_name_kinds as n
        on n.raw_name = coalesce(nullif(t.event_text, ''), t.event)
    left join anonymous_links as l
        on l.anonymous_id = case when nullif(t.user_id, '') is null then t.anonymous_id end
    where coalesce(t."timestamp", t.received_at) <= p.as_of
),

persons as (
    select distinct person_id
    from events
    where person_id is not null
),

-- mapped events; malformed properties JSON counts as no properties
kind_events as (
    select
        e.id,
        e.person_id,
        e.event_at,
        e.received_at,
        e.kind,
        case when json_valid(e.properties) then e.properties end as props
    from events as e
    where e.person_id is not null and e.kind is not null
),

-- the properties the audiences read, each JSON document parsed once
kind_json as (
    select
        id,
        person_id,
        event_at,
        received_at,
        kind,
        props ->> '$.order_id' as order_id_raw,
        json_extract(
            props, ['$.price', '$.quantity', '$.value', '$.revenue', '$.total', '$.subtotal']
        ) as nums
    from kind_events
),

kind_values as (
    select
        * exclude (order_id_raw, nums),
        case when trim(order_id_raw) <> '' then order_id_raw end as order_id,
        ref_num(nums[1]) as price,
        ref_num(nums[2]) as quantity,
        ref_num(nums[3]) as value,
        ref_num(nums[4]) as revenue,
        ref_num(nums[5]) as total,
        ref_num(nums[6]) as subtotal
    from kind_json
),

-- orders: distinct order_id per person (missing -> message id); time and value of the
-- earliest event of the order
orders as (
    select
        person_id,
        coalesce(order_id, id) as order_id,
        min(event_at) as order_at,
        arg_min(
            coalesce(total, revenue, value, subtotal, 0), (event_at, received_at, id)
        ) as order_value
    from kind_values
    where kind = 'order'
    group by person_id, coalesce(order_id, id)
),

order_facts as (
    select
        person_id,
        count(*) as order_count,
        min(order_at) as first_order_at,
        max(order_at) as last_order_at,
        sum(order_value) as gross_revenue
    from orders
    group by person_id
),

-- every refund by T counts; one without an amount takes the whole value of the order it refers
-- to when that is an order of the same person existing at T, else 0
refund_facts as (
    select
        r.person_id,
        sum(coalesce(r.total, r.revenue, r.value, o.order_value, 0)) as refunds
    from kind_values as r
    left join orders as o on r.person_id = o.person_id and r.order_id = o.order_id
    where r.kind = 'refund'
    group by r.person_id
),

cart_events as (
    select
        person_id,
        kind,
        event_at,
        received_at,
        id,
        coalesce(price, 0) * coalesce(quantity, 1) as line_value,
        coalesce(value, revenue, total) as checkout_value
    from kind_values
    where kind in ('cart_add', 'cart_remove', 'checkout')
),

cart_facts as (
    select
        c.person_id,
        max(c.event_at) filter (where c.kind in ('cart_add', 'checkout')) as last_cart_at,
        arg_max(c.checkout_value, (c.event_at, c.received_at, c.id)) filter (
            where c.kind = 'checkout'
            and c.checkout_value is not null
            and (o.last_order_at is null or c.event_at > o.last_order_at)
        ) as checkout_value,
        greatest(
            0,
            coalesce(sum(
                case c.kind
                    when 'cart_add' then c.line_value
                    when 'cart_remove' then -c.line_value
                    else 0
                end
            ) filter (where o.last_order_at is null or c.event_at > o.last_order_at), 0)
        ) as item_value
    from cart_events as c
    left join order_facts as o on c.person_id = o.person_id
    group by c.person_id
),

facts as (
    select
        p.person_id,
        em.email_sha256,
        coalesce(o.order_count, 0) as order_count,
        o.first_order_at,
        o.last_order_at,
        coalesce(o.gross_revenue, 0) as gross_revenue,
        coalesce(r.refunds, 0) as refunds,
        coalesce(o.gross_revenue, 0) - coalesce(r.refunds, 0) as net_revenue,
        o.gross_revenue / o.order_count as aov,
        c.last_cart_at,
        coalesce(
            c.last_cart_at is not null
            and (o.last_order_at is null or o.last_order_at < c.last_cart_at),
            false
        ) as is_cart_open,
        c.checkout_value,
        c.item_value
    from persons as p
    left join person_emails as em on p.person_id = em.person_id
    left join order_facts as o on p.person_id = o.person_id
    left join refund_facts as r on p.person_id = r.person_id
    left join cart_facts as c on p.person_id = c.person_id
),

tiered as (
    select
        f.* exclude (checkout_value, item_value),
        case
            when f.is_cart_open then coalesce(f.checkout_value, f.item_value)
        end as cart_value,
        case
            when f.net_revenue >= p.ltv_high_threshold then 'high'
            when f.net_revenue >= p.ltv_mid_threshold then 'mid'
            when f.net_revenue > 0 then 'low'
            else 'none'
        end as ltv_tier
    from facts as f, params as p
),

stated as (
    select
        t.*,
        case
            when t.last_order_at > p.recent_purchase_after then 1
            when t.is_cart_open and t.last_cart_at > p.cart_after
                and t.cart_value >= p.high_aov_threshold then 2
            when t.is_cart_open and t.last_cart_at > p.cart_after then 3
            when t.order_count = 1
                and t.last_order_at >= p.once_from and t.last_order_at <= p.once_to then 4
            when t.order_count >= 1 and t.last_order_at <= p.lapsed_to then 5
            when t.ltv_tier = 'high' then 6
        end as state_priority,
        p.as_of
    from tiered as t, params as p
)

select
    person_id,
    case state_priority
        when 1 then 'recent_purchaser_0_7d'
        when 2 then 'cart_abandon_high_aov_0_1d'
        when 3 then 'cart_abandon_0_1d'
        when 4 then 'purchased_once_21_45d'
        when 5 then 'lapsed_90d_plus'
        when 6 then 'ltv_high'
    end as state,
    state_priority,
    email_sha256,
    ltv_tier,
    order_count,
    first_order_at,
    last_order_at,
    gross_revenue,
    refunds,
    net_revenue,
    aov,
    last_cart_at,
    is_cart_open,
    cart_value,
    as_of
from stated
