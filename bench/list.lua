-- ListActions: limit 100, name contains (ignore case), over a large org.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":{"limit":100},"queries":[{"actionNameQuery":{"name":"ction_12","method":"TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE"}}]}'
