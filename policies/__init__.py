"""mlops-platform policy pack: the rules every stack must satisfy, as importable functions.

`policies/__main__.py` serves them to the Pulumi CLI (`pulumi preview --policy-pack policies`);
`mlopsctl preview` and the tests call the very same policy objects offline. Enforcement levels per
environment live in `policies/config/<stack>.json`, the files passed to `--policy-pack-config`.
"""
