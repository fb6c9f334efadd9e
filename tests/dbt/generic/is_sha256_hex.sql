{#- Every non-null value is a lowercase hex SHA-256 (64 characters), the only form Bing takes. -#}
{% test is_sha256_hex(model, column_name) %}

    select {{ column_name }}
    from {{ model }}
    where
        {{ column_name }} is not null
        and not regexp_full_match({{ column_name }}, '[0-9a-f]{64}')

{% endtest %}
