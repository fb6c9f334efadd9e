{#-
    The hashing macros against Microsoft's published known answer:
    sha256("test@contoso.com") = f25ad364...0101, also when the email arrives untrimmed and
    in mixed case, and a 64-hex identifier passes through unhashed (lowercased).
-#}
with

cases as (

    select
        {{ sha256_hex("'test@contoso.com'") }} as actual,
        'f25ad364d33972379a7a4f4df33db142205f5c40eb19cfdb2fc5aaf117e10101' as expected
    union all
    select
        {{ email_sha256("' ' || chr(9) || 'TEST@Contoso.com' || chr(13) || chr(10)") }},
        'f25ad364d33972379a7a4f4df33db142205f5c40eb19cfdb2fc5aaf117e10101'
    union all
    select
        {{ email_sha256("'F25AD364D33972379A7A4F4DF33DB142205F5C40EB19CFDB2FC5AAF117E10101'") }},
        'f25ad364d33972379a7a4f4df33db142205f5c40eb19cfdb2fc5aaf117e10101'

)

select * from cases
where actual is distinct from expected
