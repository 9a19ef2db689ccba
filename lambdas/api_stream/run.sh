#!/bin/sh
# The stream function's handler: the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# runs this, then forwards each invocation to the server it starts (api_stream/server.py).
cd "$LAMBDA_TASK_ROOT" || exit 1
exec python3 -m api_stream.server
