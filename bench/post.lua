-- wrk: POST a form body with an Authorization header (bench/run.sh sets both through the
-- environment: WRK_BODY, WRK_AUTH).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
