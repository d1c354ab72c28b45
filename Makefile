# Build and deploy lambda-stream. `make deploy ENV=aws-account-henrique STAGE=master` after
# `make build`; deploy is documented, never run in CI.
#
#   make build     scripts/build-lambda: cargo lambda build --release --arm64 → target/lambda/lambda-stream/bootstrap
#   make package   bootstrap + environments.yaml + mappings/ → target/lambda-stream.zip
#   make lint      validate-config, validate-mapping, cfn-lint on template.yaml
#   make deploy    sam deploy --guided with the chosen environment

ENV ?= aws-account-henrique
STAGE ?= master
TARGET := $(or $(CARGO_TARGET_DIR),target)
ZIP := $(TARGET)/lambda-stream.zip

.PHONY: build package lint deploy test

build:
	scripts/build-lambda

package: build
	rm -rf $(TARGET)/package && mkdir -p $(TARGET)/package
	cp $(TARGET)/lambda/lambda-stream/bootstrap $(TARGET)/package/
	cp environments.yaml $(TARGET)/package/
	cp -r mappings $(TARGET)/package/
	cd $(TARGET)/package && zip -qr ../lambda-stream.zip .
	@ls -l $(ZIP)

lint:
	cargo run --quiet -- validate-config environments.yaml
	cargo run --quiet -- validate-mapping mappings/*.yaml
	pip install --quiet cfn-lint==1.58.0
	cfn-lint template.yaml

deploy: lint
	bash -c 'source scripts/zig/env && sam build'
	sam deploy --guided --parameter-overrides EnvironmentName=$(ENV) StageName=$(STAGE)

test:
	scripts/test
